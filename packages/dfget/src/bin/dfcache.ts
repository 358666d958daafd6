import { runDfcache } from "../dfcache/run.js";
import { runInProcess } from "./process-io.js";

await runInProcess(runDfcache);
