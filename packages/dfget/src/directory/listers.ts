import { ErrorCode, LacewingError } from "@lacewing/common";
import type { ListFiles } from "@lacewing/sources";

/** Directory listers by URL scheme (`"s3:"`, `"hf:"`, with the colon, as `URL.protocol` has it). */
export type ListerRegistry = Readonly<Record<string, ListFiles>>;

/**
 * The listers `dfget -r` uses. Each source package export plugs in here
 * with one line, e.g. `"s3:": listS3,` and `"hf:": listHf,` (imported from
 * @lacewing/sources); nothing else in dfget names a scheme.
 */
export const DEFAULT_LISTERS: ListerRegistry = {};

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
