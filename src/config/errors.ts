/** A configuration problem. `message` names the file, line, key, what was found and what was expected. */
export class ConfigError extends Error {
  readonly code: string;
  constructor(code: "ERR_CONFIG_INVALID" | "ERR_CONFIG_NOT_FOUND" | "ERR_CONFIG_READ", message: string) {
    super(message);
    this.name = "ConfigError";
    this.code = code;
  }
}
