// The apps SDK: define actions and apps, run them locally, describe them in app.json.
export * from "./define";
export * from "./harness";
export * from "./manifest";
