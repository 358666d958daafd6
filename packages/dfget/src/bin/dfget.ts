import { runDfget } from "../cli/run.js";
import { runInProcess } from "./process-io.js";

await runInProcess(runDfget);
