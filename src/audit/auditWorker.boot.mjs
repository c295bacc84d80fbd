// Starts the TypeScript audit worker when running from source (tsx, vitest): registers tsx's
// loader in this worker thread, then loads the worker. The compiled build loads auditWorker.js directly.
import { register } from "tsx/esm/api";

register();
await import("./auditWorker.ts");
