export type { ListFiles, ListOptions, RemoteFile } from "./remote-file.js";
