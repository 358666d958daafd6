/**
 * The glob dialect of `dfget -r --include/--exclude`, matched against a
 * listed key (the "/"-separated path below the root URL), anchored at both
 * ends:
 *
 * - `*` matches any run of characters within one segment (never a `/`);
 * - `?` matches one character, never a `/`;
 * - `**` as a whole segment matches zero or more segments (`**\/*.json` is
 *   every JSON file at any depth, the top level included; `a/**` everything
 *   below `a`); `**` inside a segment is the same as `*`;
 * - `\` makes the next character literal; everything else, `[` and `{`
 *   included, is literal.
 *
 * Node's `path.matchesGlob` is not used: on Node 20 it prints an
 * ExperimentalWarning on stderr (which must hold one line on failure), and
 * its dialect (braces, classes, extglobs) is more than keys need.
 */
export type KeyMatcher = (key: string) => boolean;

/** Compiles one pattern into a matcher; the regular expression is built once. */
export function compileGlob(pattern: string): KeyMatcher {
  const segments = pattern.split("/");
  let source = "";
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === "**") {
      // Zero or more whole segments, each followed by its "/" (or, at the end, anything left).
      source += last ? "(?:.*)" : "(?:[^/]*/)*";
      return;
    }
    source += segmentSource(segment) + (last ? "" : "/");
  });
  const regex = new RegExp(`^${source}$`, "s");
  return (key) => regex.test(key);
}

function segmentSource(segment: string): string {
  let out = "";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] ?? "";
    if (c === "\\" && i + 1 < segment.length) {
      out += escapeRegex(segment[++i] ?? "");
    } else if (c === "*") {
      while (segment[i + 1] === "*") i++;
      out += "[^/]*";
    } else if (c === "?") {
      out += "[^/]";
    } else {
      out += escapeRegex(c);
    }
  }
  return out;
}

function escapeRegex(c: string): string {
  return c.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
}

export interface KeyFilterOptions {
  include: readonly string[];
  exclude: readonly string[];
}

/**
 * A key is kept when it matches at least one include pattern (or none are
 * given) and no exclude pattern: exclude wins.
 */
export function createKeyFilter(options: KeyFilterOptions): KeyMatcher {
  const include = options.include.map(compileGlob);
  const exclude = options.exclude.map(compileGlob);
  return (key) => (include.length === 0 || include.some((match) => match(key))) && !exclude.some((match) => match(key));
}
