/**
 * cosmosgate as a library: start a gateway from a configuration in your own process (tests,
 * embedding). Client applications import `cosmosgate/client` instead, which carries no server code.
 *
 * @example
 * ```ts
 * import { loadConfig, startGateway } from "cosmosgate";
 * const gw = await startGateway(await loadConfig("cosmosgate.yaml"), { log: pino() });
 * ```
 */
export { ConfigError } from "./config/errors.js";
export { type LoadedConfig, loadConfig, parseConfig } from "./config/load.js";
export { type Config, configSchema } from "./config/schema.js";
export { type Gateway, type GatewayDeps, startGateway } from "./server/gateway.js";
