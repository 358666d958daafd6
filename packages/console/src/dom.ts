/** A tiny element builder: the console has no framework, and needs none for a few tables and forms. */

type Child = Node | string | number | null | undefined | false | Child[];
type Attributes = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  append(element, children);
  return element;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function s<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attributes);
  append(element, children);
  return element;
}

function setAttributes(element: Element, attributes: Attributes): void {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.replace(/^on/, ""), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(element: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) {
      append(element, child);
      continue;
    }
    element.append(typeof child === "number" ? String(child) : child);
  }
}

/** Replaces an element's content. */
export function fill(element: Element, ...children: Child[]): void {
  element.replaceChildren();
  append(element, children);
}

/** A progress bar that also says its value in text, so it reads without colour. */
export function meter(fraction: number, label: string): HTMLElement {
  const percent = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  const bar = h("span", { class: "meter-fill" });
  // Through the CSSOM: the console's Content-Security-Policy refuses style attributes.
  bar.style.width = `${percent}%`;
  return h(
    "span",
    { class: "meter", role: "img", "aria-label": `${label}: ${percent}%` },
    h("span", { class: "meter-bar", "aria-hidden": "true" }, bar),
    h("span", { class: "meter-text" }, `${percent}%`),
  );
}

/** A state shown as a word with a shape (not only a colour). */
export function badge(state: string): HTMLElement {
  const icon: Record<string, string> = {
    succeeded: "✔",
    alive: "✔",
    reachable: "✔",
    running: "▶",
    back_to_source: "⇡",
    pending: "…",
    failed: "✖",
    cancelled: "⊘",
    stale: "!",
    unreachable: "✖",
    seed: "◆",
    normal: "●",
  };
  return h("span", { class: `badge badge-${state}` }, h("span", { "aria-hidden": "true" }, icon[state] ?? "•"), " ", state.replace(/_/g, " "));
}
