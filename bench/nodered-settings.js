// Node-RED settings for the comparison benchmark (scripts/bench): the flow in
// bench/nodered-flow.json, no editor, HTTP on NODE_RED_PORT, errors only in the log. `crypto`
// is handed to function nodes so that the webhook is signed like gridsentry's.
module.exports = {
  uiPort: Number(process.env.NODE_RED_PORT || 1880),
  uiHost: "127.0.0.1",
  flowFile: require("path").join(__dirname, "nodered-flow.json"),
  userDir: process.env.NODE_RED_USER_DIR,
  httpAdminRoot: false,
  credentialSecret: false,
  functionGlobalContext: { crypto: require("crypto") },
  logging: { console: { level: "error", metrics: false, audit: false } },
  editorTheme: { projects: { enabled: false } },
};
