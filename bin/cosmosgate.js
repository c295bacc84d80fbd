#!/usr/bin/env node
// cosmosgate command-line entry point.
// In a source checkout (src/ present) the TypeScript sources run through tsx, so `npm install`
// is the only set-up step; an installed package runs the compiled dist/.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src", "cli", "main.ts");
let entry;
if (existsSync(src) && !process.env.COSMOSGATE_USE_DIST) {
  const { register } = await import("tsx/esm/api");
  register();
  entry = src;
} else {
  entry = join(root, "dist", "cli", "main.js");
}
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv);
