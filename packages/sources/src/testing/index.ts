/** Test doubles of the sources' servers, for this package's specs and the e2e tests. */
export { TestHub, type TestHubOptions, type TestHubRepo, type TestHubStats } from "./test-hub.js";
