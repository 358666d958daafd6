// The test model hub lives in @lacewing/sources (its unit specs use it too); the e2e tests take it from here.
export { TestHub, type TestHubOptions, type TestHubRepo, type TestHubStats } from "@lacewing/sources/testing";
import type { TestHub } from "@lacewing/sources/testing";

/**
 * The environment a dfget (or manager) needs to reach the test hub, with a
 * token when given; HF_HOME points where no login token file is, so the
 * machine user's own `huggingface-cli login` never takes part.
 */
export function hubEnv(hub: TestHub, token?: string): NodeJS.ProcessEnv {
  return { HF_ENDPOINT: hub.endpoint, HF_HOME: "/nonexistent/lacewing-test-hf-home", ...(token === undefined ? {} : { HF_TOKEN: token }) };
}
