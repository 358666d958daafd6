import { ApiError, call, session } from "../api.js";
import { fill, h } from "../dom.js";
import type { ViewContext } from "../main.js";

/** The log-in form: the manager's API token, checked with one call before it is kept. */
export async function renderLogin(ctx: ViewContext): Promise<void> {
  const status = h("p", { id: "login-status", role: "status", "aria-live": "polite" });
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "current-password",
    required: true,
    "aria-describedby": "token-help",
  });
  const form = h(
    "form",
    { class: "card login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in to Lacewing"),
    h("label", { for: "token" }, "API token"),
    input,
    h("p", { id: "token-help", class: "help" }, "The manager's --token (LACEWING_MANAGER_TOKEN). It stays in this tab only."),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void (async () => {
      fill(status, "Checking…");
      try {
        await call("GET", "/schedulers", undefined, input.value);
        session.token = input.value;
        const next = sessionStorage.getItem("lacewing.after-login") ?? "#/";
        sessionStorage.removeItem("lacewing.after-login");
        location.hash = next === "#/login" ? "#/" : next;
      } catch (err) {
        fill(status, err instanceof ApiError && err.status === 401 ? "That token is not the manager's." : `Could not sign in: ${(err as Error).message}`);
        status.className = "error";
        input.focus();
      }
    })();
  });
  fill(ctx.main, form);
  input.focus();
  return Promise.resolve();
}
