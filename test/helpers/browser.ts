// Headless Debian chromium driven by playwright-core, for the console's
// browser tests. Never `npx playwright install`: the browser is the
// distribution's (.ci/run installs it), started with background networking
// off and a fresh profile, so a test sees only what the console shows.
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { ROOT } from "./processes.js";

export const CHROMIUM = process.env["LACEWING_CHROMIUM"] ?? "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Where the browser tests keep their screenshots (gitignored). */
export const ARTIFACTS = join(ROOT, "test", "artifacts", "console");

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** What the pages logged as errors and warnings, and uncaught exceptions: printed when a test fails. */
  readonly problems: string[];
  /** Saves a screenshot as ARTIFACTS/<name>.png and returns its path. */
  screenshot(name: string, page?: Page): Promise<string>;
  close(): Promise<void>;
}

export async function openBrowser(options: { width?: number; height?: number; colorScheme?: "light" | "dark" } = {}): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), "lacewing-chromium-"));
  await mkdir(ARTIFACTS, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
    colorScheme: options.colorScheme ?? "light",
    reducedMotion: "reduce",
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on("requestfailed", (request) => problems.push(`request failed: ${request.method()} ${request.url()} ${request.failure()?.errorText ?? ""}`));
  return {
    context,
    page,
    problems,
    async screenshot(name, target = page) {
      const path = join(ARTIFACTS, `${name}.png`);
      await target.screenshot({ path, fullPage: true });
      return path;
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
