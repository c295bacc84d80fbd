import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { type Browser, type CDPSession, chromium, type Page } from "playwright-core";
import { loadConfig } from "../../src/config/load.js";
import { firstAdminInvite } from "../../src/identity/users/index.js";
import type { ConsoleDeps } from "../../src/server/controlPlane/context.js";
import { createControlPlane } from "../../src/server/controlPlane/index.js";
import {
  createIdentityServices,
  type IdentityEvent,
  type IdentityServices,
} from "../../src/server/identity.js";
import { freePort } from "./upstream.js";

/** A control plane listening on 127.0.0.1, configured for the origin http://localhost:PORT (RP ID localhost). */
export interface ControlPlaneHarness {
  dir: string;
  port: number;
  /** The WebAuthn origin and public URL: http://localhost:PORT. */
  origin: string;
  identity: IdentityServices;
  app: FastifyInstance;
  /** Events given to the control plane's and the identity services' sinks, in order. */
  events: IdentityEvent[];
  /** Every log line written (JSON). */
  logs: string[];
  now(): number;
  /** Moves the injected clock forward. */
  advance(ms: number): void;
  /** A fresh first-administrator invite secret (while there are no users). */
  adminInvite(): string;
  close(): Promise<void>;
}

/**
 * Starts the real control plane on a temporary state directory: `loadConfig` on a temporary
 * cosmosgate.yaml, `createIdentityServices`, `createControlPlane`, `app.listen`. Nothing is mocked.
 */
export async function startControlPlane(
  opts: {
    extraIdentityYaml?: string;
    /** The public URL's scheme; the listener itself is always plain HTTP. Default "http". */
    scheme?: "http" | "https";
    /** The web console's dependencies (status, static files); without them its routes are absent. */
    console?: ConsoleDeps;
  } = {},
): Promise<ControlPlaneHarness> {
  const dir = mkdtempSync(join(tmpdir(), "cosmosgate-cp-"));
  const port = await freePort();
  const origin = `${opts.scheme ?? "http"}://localhost:${port}`;
  const configFile = join(dir, "cosmosgate.yaml");
  writeFileSync(
    configFile,
    `stateDir: ./state
controlPlane:
  listen: 127.0.0.1:${port}
  publicUrl: ${origin}
identity:
  rp: {id: localhost, name: cosmosgate test, origins: ["${origin}"]}
${opts.extraIdentityYaml ?? ""}
log: {level: debug}
`,
  );
  const loaded = await loadConfig(configFile);
  const stateDir = join(dir, "state");
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  let offset = 0;
  const clock = () => Date.now() + offset;
  const events: IdentityEvent[] = [];
  const logs: string[] = [];
  const log = pino(
    { level: "debug" },
    new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk));
        cb();
      },
    }),
  );
  const sink = (e: IdentityEvent) => {
    events.push(e);
  };
  const identity = await createIdentityServices(loaded, { clock, events: sink, stateDir });
  const app = createControlPlane({
    identity,
    config: loaded.config,
    log,
    clock,
    events: sink,
    cookieSecret: randomBytes(32).toString("base64url"),
    health: () => ({ status: "ok", test: true }),
    ...(opts.console !== undefined ? { console: opts.console } : {}),
  });
  await app.listen({ host: "127.0.0.1", port });
  return {
    dir,
    port,
    origin,
    identity,
    app,
    events,
    logs,
    now: clock,
    advance(ms) {
      offset += ms;
    },
    adminInvite() {
      const invite = firstAdminInvite(identity.store, clock);
      if (invite === undefined) throw new Error("there are users already: no first-administrator invite");
      return invite.secret;
    },
    async close() {
      await app.close();
      identity.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const CHROMIUM = "/usr/bin/chromium";

/**
 * Launches Debian's headless Chromium. Fails with instructions when it is not installed: the
 * browser test must not pass by skipping.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}; the browser test needs it. Install it with \`apt-get update && apt-get install -y chromium\` (.ci/run does this).`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A CTAP2 USB security key with a PIN (user verification) and discoverable credentials, that touches itself. */
export async function addVirtualAuthenticator(cdp: CDPSession): Promise<string> {
  const { authenticatorId } = (await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "usb",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  })) as { authenticatorId: string };
  return authenticatorId;
}

/** Opens a DevTools session on the page with the WebAuthn domain enabled (virtual authenticators are per page). */
export async function webauthnSession(page: Page): Promise<CDPSession> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  return cdp;
}

export const SCREENSHOTS = join(process.cwd(), "test-results", "screenshots");

/**
 * Saves `test-results/screenshots/<name>-desktop.png` (1280 px wide) and `<name>-phone.png` (390 px
 * wide), full page, then restores the desktop viewport.
 */
export async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
}
