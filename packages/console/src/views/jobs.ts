import type { CreateJobBody, JobPageView, JobView } from "@lacewing/manager";
import { ApiError, call } from "../api.js";
import { badge, fill, h, meter } from "../dom.js";
import { ago, shortId } from "../format.js";
import type { ViewContext } from "../main.js";
import { poll } from "../poll.js";

const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const SCOPES = [
  ["single_seed_peer", "one seed peer (the one the scheduler would pick)"],
  ["all_seed_peers", "every seed peer"],
  ["all_peers", "every node"],
] as const;

function field(id: string, label: string, input: HTMLElement, help?: string): HTMLElement {
  if (help !== undefined) input.setAttribute("aria-describedby", `${id}-help`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    input,
    help === undefined ? null : h("p", { id: `${id}-help`, class: "help" }, help),
    h("p", { id: `${id}-error`, class: "field-error", hidden: true }),
  );
}

/** The form's id for an API field ("args.url" → "field-args-url"). */
function inputIdOf(apiField: string): string {
  return `field-${apiField.replace(/\./g, "-")}`;
}

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
}

/**
 * The create form, field for field the body of POST /api/v1/jobs (see the
 * API reference). A 400 names the field at fault; the form marks that input
 * and moves the focus to it.
 */
function createForm(ctx: ViewContext): HTMLFormElement {
  const id = inputIdOf;
  const image = h("input", { type: "radio", name: "args.type", id: "field-args-type-image", value: "image", checked: true });
  const file = h("input", { type: "radio", name: "args.type", id: "field-args-type-file", value: "file" });
  const url = h("input", { id: id("args.url"), name: "args.url", type: "url", autocomplete: "off", spellcheck: "false" });
  const urls = h("textarea", { id: id("args.urls"), name: "args.urls", rows: 3, spellcheck: "false" });
  const platform = h("input", { id: id("args.platform"), name: "args.platform", value: "linux/amd64", autocomplete: "off" });
  const scope = h("select", { id: id("args.scope"), name: "args.scope" }, ...SCOPES.map(([value, label]) => h("option", { value }, `${value} — ${label}`)));
  const tag = h("input", { id: id("args.tag"), name: "args.tag", autocomplete: "off" });
  const application = h("input", { id: id("args.application"), name: "args.application", autocomplete: "off" });
  const filtered = h("input", { id: id("args.filteredQueryParams"), name: "args.filteredQueryParams", autocomplete: "off" });
  const headers = h("textarea", { id: id("args.headers"), name: "args.headers", rows: 2, spellcheck: "false" });
  const username = h("input", { id: id("args.username"), name: "args.username", autocomplete: "off" });
  const password = h("input", { id: id("args.password"), name: "args.password", type: "password", autocomplete: "new-password" });
  const status = h("p", { id: "create-status", role: "status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "card create-job", "aria-labelledby": "create-title", novalidate: true },
    h("h2", { id: "create-title" }, "New preheat job"),
    h(
      "fieldset",
      {},
      h("legend", {}, "What to preheat (args.type)"),
      h("label", { class: "inline" }, image, " image — an OCI or Docker manifest; its config and layers are preheated"),
      h("label", { class: "inline" }, file, " file — each URL is one task"),
    ),
    field(id("args.url"), "URL (args.url)", url, "image: https://registry/v2/<name>/manifests/<tag or digest>; file: one URL"),
    field(id("args.urls"), "More URLs (args.urls), one per line", urls, "file preheats only"),
    h(
      "div",
      { class: "row" },
      field(id("args.platform"), "Platform (args.platform)", platform, "os/arch[/variant], image only"),
      field(id("args.scope"), "Scope (args.scope)", scope),
    ),
    h(
      "details",
      {},
      h("summary", {}, "Task id and credentials (optional)"),
      h(
        "div",
        { class: "row" },
        field(id("args.tag"), "Tag (args.tag)", tag, "as dfget --tag"),
        field(id("args.application"), "Application (args.application)", application, "as dfget --application"),
      ),
      field(id("args.filteredQueryParams"), "Filtered query parameters (args.filteredQueryParams)", filtered, "comma-separated, as dfget --filter"),
      field(id("args.headers"), "Origin headers (args.headers), one 'Name: value' per line", headers, "values are kept secret and never shown again"),
      h(
        "div",
        { class: "row" },
        field(id("args.username"), "Registry user (args.username)", username),
        field(id("args.password"), "Registry password (args.password)", password),
      ),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create job")),
    status,
  );
  const clearErrors = (): void => {
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    for (const error of form.querySelectorAll<HTMLElement>(".field-error")) error.hidden = true;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    const args: CreateJobBody["args"] = { type: file.checked ? "file" : "image", scope: scope.value as (typeof SCOPES)[number][0] };
    if (url.value.trim() !== "") args.url = url.value.trim();
    if (lines(urls.value).length > 0) args.urls = lines(urls.value);
    if (args.type === "image" && platform.value.trim() !== "") args.platform = platform.value.trim();
    if (tag.value !== "") args.tag = tag.value;
    if (application.value !== "") args.application = application.value;
    const params = filtered.value
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p !== "");
    if (params.length > 0) args.filteredQueryParams = params;
    const headerLines = lines(headers.value);
    if (headerLines.length > 0)
      args.headers = Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(":")).trim() || line, line.slice(line.indexOf(":") + 1).trim()]));
    if (username.value !== "") args.username = username.value;
    if (password.value !== "") args.password = password.value;
    void (async () => {
      fill(status, "Creating…");
      status.className = "";
      try {
        const job = await call<JobView>("POST", "/jobs", { type: "preheat", args } satisfies CreateJobBody);
        location.hash = `#/jobs/${job.id}`;
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return ctx.unauthorized();
        status.className = "error";
        fill(status, `Not created: ${(err as Error).message}`);
        const target = err instanceof ApiError && err.field !== undefined ? form.querySelector<HTMLElement>(`#${CSS.escape(inputIdOf(err.field))}`) : null;
        if (target !== null) {
          target.setAttribute("aria-invalid", "true");
          const message = form.querySelector<HTMLElement>(`#${CSS.escape(`${target.id}-error`)}`);
          if (message !== null) {
            message.hidden = false;
            fill(message, (err as Error).message);
            target.setAttribute("aria-errormessage", message.id);
          }
          target.closest("details")?.setAttribute("open", "");
          target.focus();
        }
      }
    })();
  });
  return form;
}

function cancelButton(ctx: ViewContext, job: JobView, after: () => void): HTMLElement | null {
  if (FINAL.has(job.state)) return null;
  return h(
    "button",
    {
      type: "button",
      class: "danger",
      "aria-label": `Cancel job ${job.id}`,
      onclick: (event: Event) => {
        (event.currentTarget as HTMLButtonElement).disabled = true;
        call<JobView>("DELETE", `/jobs/${job.id}`).then(after, (err: unknown) => {
          if (err instanceof ApiError && err.status === 401) ctx.unauthorized();
        });
      },
    },
    "Cancel",
  );
}

/** Preheat jobs: the create form and the newest jobs with their progress; refreshed every 2 s. */
export async function renderJobs(ctx: ViewContext): Promise<void> {
  const list = h("section", { "aria-labelledby": "jobs-title", "aria-live": "polite" });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  fill(ctx.main, h("h1", {}, "Preheat jobs"), createForm(ctx), problem, list);
  let refresh = async (): Promise<void> => {};
  refresh = async () => {
    const page = await call<JobPageView>("GET", "/jobs?perPage=50");
    problem.hidden = true;
    fill(
      list,
      h("h2", { id: "jobs-title" }, `Jobs (${page.total})`),
      page.jobs.length === 0
        ? h("p", {}, "No job yet.")
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ...["Job", "What", "State", "Progress", "Created", ""].map((title) => h("th", { scope: "col" }, title)))),
              h(
                "tbody",
                {},
                ...page.jobs.map((job) =>
                  h(
                    "tr",
                    { "data-job-id": job.id },
                    h("th", { scope: "row" }, h("a", { href: `#/jobs/${job.id}` }, h("code", {}, shortId(job.id)))),
                    h("td", { class: "url" }, `${job.args.type}: ${job.args.urls.join(", ")}`),
                    h("td", {}, badge(job.state)),
                    h(
                      "td",
                      {},
                      meter(job.progress.total === 0 ? 0 : job.progress.done / job.progress.total, "tasks done"),
                      ` ${job.progress.done}/${job.progress.total}`,
                    ),
                    h("td", {}, ago(job.createdAt)),
                    h(
                      "td",
                      {},
                      cancelButton(ctx, job, () => void refresh()),
                    ),
                  ),
                ),
              ),
            ),
          ),
    );
  };
  await poll(ctx.signal, 2_000, refresh, (err) => {
    if (err instanceof ApiError && err.status === 401) return ctx.unauthorized();
    problem.hidden = false;
    fill(problem, `Refresh failed: ${(err as Error).message}`);
  });
}

/** One job: its state, progress, and each task's result on each host; polled every second until it is final. */
export async function renderJob(ctx: ViewContext, id: string): Promise<void> {
  const body = h("div", { "aria-live": "polite" });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  fill(ctx.main, h("p", {}, h("a", { href: "#/jobs" }, "← All jobs")), h("h1", {}, "Job ", h("code", {}, shortId(id))), problem, body);
  let refresh = async (): Promise<boolean> => false;
  refresh = async () => {
    const job = await call<JobView>("GET", `/jobs/${id}`);
    problem.hidden = true;
    fill(
      body,
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "State"),
        h("dd", { id: "job-state", "data-state": job.state }, badge(job.state)),
        h("dt", {}, "Progress"),
        h(
          "dd",
          {},
          meter(job.progress.total === 0 ? 0 : job.progress.done / job.progress.total, "tasks done"),
          ` ${job.progress.done} of ${job.progress.total} tasks`,
        ),
        h("dt", {}, "What"),
        h("dd", { class: "url" }, `${job.args.type}: ${job.args.urls.join(", ")}`),
        h("dt", {}, "Scope"),
        h("dd", {}, job.args.scope),
        h("dt", {}, "Created"),
        h("dd", {}, h("time", { datetime: job.createdAt }, ago(job.createdAt))),
        job.error === "" ? null : [h("dt", {}, "Error"), h("dd", { class: "error" }, job.error)],
      ),
      cancelButton(ctx, job, () => void refresh()),
      h("h2", {}, "Tasks"),
      job.tasks.length === 0
        ? h("p", {}, "No task planned yet.")
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ...["Task", "Blob or URL", "State", "Hosts", "Error"].map((title) => h("th", { scope: "col" }, title)))),
              h(
                "tbody",
                {},
                ...job.tasks.map((task) =>
                  h(
                    "tr",
                    {},
                    h("th", { scope: "row" }, task.taskId === "" ? "" : h("a", { href: `#/tasks/${task.taskId}` }, h("code", {}, shortId(task.taskId)))),
                    h("td", { class: "url" }, task.digest === "" ? task.url : task.digest),
                    h("td", {}, badge(task.state)),
                    h(
                      "td",
                      {},
                      h(
                        "ul",
                        { class: "plain" },
                        ...task.hosts.map((host) =>
                          h(
                            "li",
                            {},
                            badge(host.success ? "succeeded" : "failed"),
                            ` ${host.hostname || host.hostId}`,
                            host.description === "" ? null : ` — ${host.description}`,
                          ),
                        ),
                      ),
                    ),
                    h("td", {}, task.error),
                  ),
                ),
              ),
            ),
          ),
    );
    return !FINAL.has(job.state);
  };
  await poll(ctx.signal, 1_000, refresh, (err) => {
    if (err instanceof ApiError && err.status === 401) return ctx.unauthorized();
    problem.hidden = false;
    fill(problem, `Refresh failed: ${(err as Error).message}`);
  });
}
