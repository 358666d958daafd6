import type { SimResult } from "./simulation.js";

export async function renderPlots(_results: readonly SimResult[], _dir: string): Promise<void> {}
