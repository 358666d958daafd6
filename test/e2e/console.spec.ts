/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The web console in a real browser (Debian's chromium, headless, through
// playwright-core) against a real cluster on loopback: a scheduler, a seed
// peer, three peers and the manager, every one a process with TLS. It signs
// in with the token, creates a preheat job from the form and watches it
// succeed, watches the flow of a live 3-peer download, and sees every host
// on the overview; at 1280×800 and in a narrow dark window. Screenshots go
// to test/artifacts/console/ (gitignored).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { taskIdOf } from "@lacewing/common";
import { openBrowser, CHROMIUM, type Browser } from "../helpers/browser.js";
import { dfget, startPeer, startScheduler, waitForHosts, type Daemon, type SchedulerProcess } from "../helpers/cluster.js";
import { startManagerProcess, type ManagerProcess } from "../helpers/manager.js";
import { TestOrigin, randomBytesOf } from "../helpers/origin.js";
import { ROOT } from "../helpers/processes.js";
import { skipUnlessAvailable } from "../helpers/requirements.js";

const MiB = 1024 * 1024;
const BLOB = 24 * MiB + 321;
const PREHEAT = 3 * MiB + 7;
const skip = await skipUnlessAvailable("console browser e2e", { other: [existsSync(CHROMIUM) ? undefined : `chromium (${CHROMIUM})`] });

describe("web console in chromium against a real cluster", { skip }, () => {
  let root: string;
  let origin: TestOrigin;
  let scheduler: SchedulerProcess;
  let seed: Daemon;
  let peers: Daemon[] = [];
  let manager: ManagerProcess;
  let browser: Browser;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "lacewing-console-e2e-"));
    origin = new TestOrigin({ "/blob.bin": randomBytesOf(BLOB, 91), "/preheat.bin": randomBytesOf(PREHEAT, 92) });
    await origin.start();
    scheduler = await startScheduler();
    const managerStarting = startManagerProcess(["--scheduler", scheduler.address]);
    const browserStarting = openBrowser();
    // A slow seed stretches the download over a few seconds, so the flow view sees it while it runs.
    seed = await startPeer(root, "seed-1", scheduler.address, ["--seed", "--upload-rate-limit", "6MiB", "--idc", "dc-east", "--location", "eu|east|r1"]);
    peers = await Promise.all(
      [
        ["node-a", "dc-east", "eu|east|r1"],
        ["node-b", "dc-east", "eu|east|r2"],
        ["node-c", "dc-west", "eu|west|r1"],
      ].map(([name, idc, location]) => startPeer(root, name!, scheduler.address, ["--idc", idc!, "--location", location!])),
    );
    await waitForHosts(scheduler.address, 4);
    [manager, browser] = await Promise.all([managerStarting, browserStarting]);
  });

  afterEach((t) => {
    // What the browser saw goes with a failure: a page that never rendered says why only there.
    const test = t as unknown as { passed: boolean; diagnostic(message: string): void };
    const problems = browser?.problems.splice(0) ?? [];
    if (!test.passed) for (const problem of problems) test.diagnostic(problem);
  });

  after(async () => {
    await browser?.close();
    await manager?.stop();
    await Promise.all([seed, ...peers].map((d) => d?.stop()));
    await scheduler?.stop();
    await origin?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("asks for the token, refuses a wrong one, and signs in with the manager's", async () => {
    const { page } = browser;
    await page.goto(`${manager.url}/`);
    await page.waitForURL(/#\/login$/);
    await page.getByLabel("API token").fill("not-the-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That token is not the manager's.").waitFor();
    await browser.screenshot("login-refused");
    await page.getByLabel("API token").fill(manager.token);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Cluster overview" }).waitFor();
    assert.match(page.url(), /#\/$/);
  });

  it("shows every host on the overview, grouped by zone, with its type and health in words", async () => {
    const { page } = browser;
    await page.goto(`${manager.url}/#/`);
    const rows = page.locator("tr[data-host-id]");
    await page.waitForFunction(() => document.querySelectorAll("tr[data-host-id]").length === 4);
    const text = await page.locator("main").innerText();
    for (const name of ["Zone: dc-east · eu|east|r1", "Zone: dc-east · eu|east|r2", "Zone: dc-west · eu|west|r1"]) assert.ok(text.includes(name), name);
    assert.equal(await rows.count(), 4);
    assert.equal(await page.locator("tr[data-host-id] .badge-seed").count(), 1);
    assert.equal(await page.locator("tr[data-host-id] .badge-alive").count(), 4);
    assert.match(text, /reachable/);
    assert.match(text, new RegExp(scheduler.address.replace(/\./g, "\\.")));
    await browser.screenshot("overview");
  });

  it("creates a preheat job from the form with the keyboard and watches it reach succeeded", async () => {
    const { page } = browser;
    await page.goto(`${manager.url}/#/jobs`);
    await page.getByRole("heading", { name: "New preheat job" }).waitFor();
    // A mistake first: the answer names the field, and the form marks it and moves the focus there.
    await page.getByLabel("file — each URL is one task").check();
    await page.getByLabel("URL (args.url)").fill("ftp://files.example/nope");
    await page.getByLabel("URL (args.url)").press("Enter");
    await page.locator("#field-args-url[aria-invalid='true']").waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), "field-args-url");

    await page.getByLabel("URL (args.url)").fill(origin.url("/preheat.bin"));
    // On to the scope by keyboard: URL → URLs → platform → scope.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "field-args-scope");
    await page.selectOption("#field-args-scope", "all_seed_peers");
    await page.getByRole("button", { name: "Create job" }).focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    await page.locator("#job-state[data-state='succeeded']").waitFor({ timeout: 60_000 });
    const text = await page.locator("main").innerText();
    assert.match(text, /1 of 1 tasks/);
    assert.match(text, /seed-1|succeeded/);
    await browser.screenshot("preheat-succeeded");
    // The API agrees with what the page showed.
    const jobId = page.url().split("/").pop()!;
    const job = await manager.waitForJob(jobId);
    assert.equal(job.state, "succeeded");
    assert.equal(job.tasks[0]?.hosts[0]?.success, true);
  });

  it("shows the flow of a live 3-peer download: edges from the origin and between peers, with their bytes, and pieces landing", async () => {
    const { page } = browser;
    const url = origin.url("/blob.bin");
    const taskId = taskIdOf({ url });
    await page.goto(`${manager.url}/#/tasks/${taskId}`);
    await page.getByText("No piece of this task has landed recently").waitFor();
    let finished = 0;
    const downloads = Promise.all(
      peers.map(async (peer) => {
        const result = await dfget(peer, url, join(root, `${peer.name}.out`), "--piece-length", "1MiB");
        finished++;
        return result;
      }),
    );
    try {
      // Edges appear while the download runs.
      await page.locator("g.edge").first().waitFor({ timeout: 30_000 });
      const liveEdges = await page.locator("g.edge").count();
      const liveBytes = (await page.locator("g.edge text.edge-label").first().textContent()) ?? "";
      const seenLive = finished < peers.length;
      assert.match(liveBytes, /^[\d.]+ (B|KiB|MiB)$/, "an edge says its bytes");
      await page.locator("#flow-live", { hasText: "Live" }).waitFor({ timeout: 5_000 });
      await browser.screenshot("flow-live");
      assert.ok(seenLive, "the flow view showed edges before every download finished");
      assert.ok(liveEdges >= 1);
    } finally {
      const results = await downloads;
      for (const result of results) assert.equal(result.code, 0, result.stderr);
    }
    // After the download: every peer got every byte, from the origin (through the seed) and from each other.
    await page.waitForFunction(
      ({ size, children }) => {
        const into = new Map<string, number>();
        for (const edge of document.querySelectorAll<SVGGElement>("g.edge"))
          into.set(edge.dataset["child"] ?? "", (into.get(edge.dataset["child"] ?? "") ?? 0) + Number(edge.dataset["bytes"]));
        return into.size >= children && [...into.values()].every((bytes) => bytes >= size);
      },
      { size: BLOB, children: 4 },
      { timeout: 20_000 },
    );
    const edges = await page.locator("g.edge").evaluateAll((nodes) =>
      nodes.map((n) => ({
        parent: Number(n.getAttribute("data-parent")),
        child: Number(n.getAttribute("data-child")),
        bytes: Number(n.getAttribute("data-bytes")),
      })),
    );
    assert.ok(
      edges.some((e) => e.parent === -1),
      "an edge from the origin",
    );
    assert.ok(
      edges.some((e) => e.parent >= 0),
      "edges between peers",
    );
    assert.ok((await page.locator("rect.tick").count()) >= Math.ceil(BLOB / MiB) * 4, "a tick per piece landing on each of the four peers");
    const table = await page.locator("table.edges").innerText();
    assert.match(table, /origin \(origin\)/);
    assert.match(table, /MiB/);
    const shot = await browser.screenshot("flow-finished");
    // The README's Console section shows this one.
    if (process.env["LACEWING_UPDATE_SCREENSHOT"] === "1") await copyFile(shot, join(ROOT, "docs", "console-flow.png"));
  });

  it("cancels a running preheat job from its page", async () => {
    const { page } = browser;
    // An origin that never answers keeps the seed's download, and so the job, running until it is cancelled.
    const stalled = new TestOrigin({ "/stuck.bin": randomBytesOf(MiB, 93) });
    stalled.faults = { stall: true };
    await stalled.start();
    try {
      await page.goto(`${manager.url}/#/jobs`);
      await page.getByLabel("file — each URL is one task").check();
      await page.getByLabel("URL (args.url)").fill(stalled.url("/stuck.bin"));
      await page.getByRole("button", { name: "Create job" }).click();
      await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
      await page.locator("#job-state[data-state='running']").waitFor({ timeout: 20_000 });
      await page.getByRole("button", { name: /^Cancel job / }).click();
      await page.locator("#job-state[data-state='cancelled']").waitFor({ timeout: 10_000 });
      assert.equal((await manager.waitForJob(page.url().split("/").pop()!)).state, "cancelled");
      await browser.screenshot("preheat-cancelled");
    } finally {
      await stalled.close();
    }
  });

  it("serves the API reference page, generated from the routes' schemas", async () => {
    const { page } = browser;
    await page.goto(`${manager.url}/api/v1/docs/`);
    await page.getByText("/api/v1/tasks/{id}/flow").first().waitFor();
    await page.getByText("lacewing-manager").first().waitFor();
    await browser.screenshot("api-reference");
  });

  it("works in a narrow window in dark mode: no sideways scrolling of the page, and the same words", async () => {
    // The same tab: the token lives in its sessionStorage.
    const narrow = browser.page;
    try {
      await narrow.setViewportSize({ width: 390, height: 844 });
      await narrow.emulateMedia({ colorScheme: "dark" });
      for (const [hash, heading, name] of [
        ["#/", "Cluster overview", "overview-narrow-dark"],
        ["#/jobs", "Preheat jobs", "jobs-narrow-dark"],
        ["#/tasks", "Tasks", "tasks-narrow-dark"],
      ] as const) {
        await narrow.goto(`${manager.url}/${hash}`);
        await narrow.getByRole("heading", { name: heading, exact: true }).waitFor();
        await narrow.locator("main table, main form").first().waitFor();
        const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `${hash} scrolls sideways by ${overflow}px`);
        const background = await narrow.evaluate(() => getComputedStyle(document.body).backgroundColor);
        assert.equal(background, "rgb(21, 23, 26)", "the dark palette applies");
        await browser.screenshot(name, narrow);
      }
    } finally {
      await narrow.setViewportSize({ width: 1280, height: 800 });
      await narrow.emulateMedia({ colorScheme: "light" });
    }
  });
});
