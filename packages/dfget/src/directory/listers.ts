import { ErrorCode, LacewingError } from "@lacewing/common";
import type { ListFiles } from "@lacewing/sources";

/** Directory listers by URL scheme (`"s3:"`, `"hf:"`, with the colon, as `URL.protocol` has it). */
export type ListerRegistry = Readonly<Record<string, ListFiles>>;

/**
 * The listers `dfget -r` uses; nothing else in dfget names a scheme. Each
 * is loaded lazily, so that a single-file dfget (whose start-up counts)
 * never loads an SDK it does not use.
 */
export const DEFAULT_LISTERS: ListerRegistry = {
  "s3:": lazyLister(async () => (await import("@lacewing/sources")).listS3),
  "hf:": lazyLister(async () => (await import("@lacewing/sources")).listHf),
};

/** A lister that loads the real one on first use (a dynamic import), then delegates to it. */
export function lazyLister(load: () => Promise<ListFiles>): ListFiles {
  let loaded: Promise<ListFiles> | undefined;
  return async function* (rootUrl, options) {
    loaded ??= load();
    yield* (await loaded)(rootUrl, options);
  };
}

/** What `dfget -r` says about a scheme it cannot list. */
export const SUPPORTED_DIRECTORIES = "dfget -r supports s3:// and hf:// directories";

/**
 * The lister for a directory URL. An http(s) URL names one file, so `-r`
 * with one is a usage error; any other scheme without a lister is a bad URL.
 */
export function listerFor(rootUrl: string, registry: ListerRegistry = DEFAULT_LISTERS): ListFiles {
  let protocol: string;
  try {
    protocol = new URL(rootUrl).protocol;
  } catch (err) {
    throw new LacewingError(ErrorCode.badUrl, "invalid_argument", `not a valid URL: ${JSON.stringify(rootUrl)}`, { cause: err });
  }
  if (protocol === "http:" || protocol === "https:") {
    throw new LacewingError(
      ErrorCode.usage,
      "invalid_argument",
      `-r lists a directory, and an ${protocol.slice(0, -1)} URL names one file: drop -r to download it (${SUPPORTED_DIRECTORIES})`,
    );
  }
  const lister = Object.hasOwn(registry, protocol) ? registry[protocol] : undefined;
  if (lister === undefined) {
    throw new LacewingError(ErrorCode.badUrl, "invalid_argument", `cannot list ${protocol.slice(0, -1)}:// URLs: ${SUPPORTED_DIRECTORIES}`);
  }
  return lister;
}
