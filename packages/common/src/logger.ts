import { pino, type Logger, type LevelWithSilent } from "pino";
import { REDACTED } from "./redact-url.js";

export type { Logger };

export interface LoggerOptions {
  /** Process or component name, e.g. "dfdaemon". */
  name: string;
  level?: LevelWithSilent;
  /** Where to write; defaults to stderr so stdout stays for program output. */
  destination?: NodeJS.WritableStream;
}

/**
 * Paths whose values are replaced before a line is written. Headers may carry
 * credentials, so anything that looks like them is censored wherever it sits.
 */
export const REDACTED_PATHS: readonly string[] = [
  "headers.authorization",
  "headers.Authorization",
  "headers.cookie",
  "headers.Cookie",
  "requestHeaders",
  "*.requestHeaders",
  "objectStorage",
  "*.objectStorage",
  "secretAccessKey",
  "*.secretAccessKey",
  "sessionToken",
  "*.sessionToken",
  'headers["proxy-authorization"]',
  'headers["Proxy-Authorization"]',
  "*.headers.authorization",
  "*.headers.Authorization",
  "*.headers.cookie",
  "*.headers.Cookie",
  '*.headers["proxy-authorization"]',
  '*.headers["Proxy-Authorization"]',
  "password",
  "*.password",
  "token",
  "*.token",
];

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? "info",
      redact: { paths: [...REDACTED_PATHS], censor: REDACTED },
      base: { pid: process.pid },
    },
    options.destination ?? process.stderr,
  );
}

/** A logger that drops everything, for tests and libraries used quietly. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
