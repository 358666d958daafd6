/**
 * The Lacewing console: a single page over the manager's REST API, with
 * hash routes (#/, #/tasks, #/tasks/<id>, #/jobs, #/jobs/<id>) so the
 * manager serves one static page and every view is a link. Each view renders
 * into <main> and polls while it is shown; leaving it aborts its signal.
 */
import { ApiError, call, session } from "./api.js";
import { h } from "./dom.js";
import { renderFlow } from "./views/flow.js";
import { renderJob, renderJobs } from "./views/jobs.js";
import { renderLogin } from "./views/login.js";
import { renderOverview } from "./views/overview.js";
import { renderTasks } from "./views/tasks.js";

export interface ViewContext {
  main: HTMLElement;
  signal: AbortSignal;
  query: URLSearchParams;
  /** Called when the API answers 401: back to the log-in form. */
  unauthorized(): void;
}

type View = (ctx: ViewContext, ...params: string[]) => Promise<void>;

const ROUTES: Array<[RegExp, View, string]> = [
  [/^\/$/, renderOverview, "overview"],
  [/^\/tasks$/, renderTasks, "tasks"],
  [/^\/tasks\/([0-9a-f]{64})$/, renderFlow, "tasks"],
  [/^\/jobs$/, renderJobs, "jobs"],
  [/^\/jobs\/([0-9a-fA-F-]{36})$/, renderJob, "jobs"],
];

let current: AbortController | undefined;

function setupTheme(): void {
  const button = document.getElementById("theme-toggle") as HTMLButtonElement;
  const apply = (theme: string): void => {
    if (theme === "auto") delete document.documentElement.dataset["theme"];
    else document.documentElement.dataset["theme"] = theme;
    button.textContent = `Theme: ${theme}`;
    button.setAttribute("aria-label", `Colour theme: ${theme}. Change theme`);
  };
  const order = ["auto", "light", "dark"];
  apply(localStorage.getItem("lacewing.theme") ?? "auto");
  button.addEventListener("click", () => {
    const next = order[(order.indexOf(localStorage.getItem("lacewing.theme") ?? "auto") + 1) % order.length] ?? "auto";
    localStorage.setItem("lacewing.theme", next);
    apply(next);
  });
}

async function route(): Promise<void> {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const main = document.getElementById("main") as HTMLElement;
  const [path = "/", search = ""] = (location.hash.replace(/^#/, "") || "/").split("?");
  const ctx: ViewContext = {
    main,
    signal: controller.signal,
    query: new URLSearchParams(search),
    unauthorized: () => {
      session.token = "";
      location.hash = "#/login";
    },
  };
  const signOut = document.getElementById("sign-out") as HTMLButtonElement;
  signOut.hidden = session.token === "";
  if (path === "/login") {
    markNav("");
    await renderLogin(ctx);
    return;
  }
  for (const [pattern, view, nav] of ROUTES) {
    const match = pattern.exec(path);
    if (match === null) continue;
    markNav(nav);
    try {
      await view(ctx, ...match.slice(1));
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err instanceof ApiError && err.status === 401) return ctx.unauthorized();
      main.replaceChildren(h("p", { class: "error", role: "alert" }, `Could not load this view: ${(err as Error).message}`));
    }
    return;
  }
  markNav("");
  main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the overview")));
}

function markNav(name: string): void {
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a[data-nav]")) {
    if (link.dataset["nav"] === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function start(): Promise<void> {
  setupTheme();
  document.getElementById("sign-out")?.addEventListener("click", () => {
    session.token = "";
    location.hash = "#/login";
  });
  window.addEventListener("hashchange", () => void route());
  // A manager without a token (loopback only) needs no log-in.
  if (session.token === "" && location.hash !== "#/login") {
    try {
      await call("GET", "/schedulers", undefined, "");
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        sessionStorage.setItem("lacewing.after-login", location.hash || "#/");
        location.hash = "#/login";
        return route();
      }
    }
  }
  await route();
}

void start();
