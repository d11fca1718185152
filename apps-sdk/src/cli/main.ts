// The erp-edge command-line tool (placeholder until the commands land).
console.error("erp-edge: no commands yet");
process.exitCode = 2;
