// The erp-edge executable (bin/erp-edge.js imports this bundle): runs main on the process's arguments.
import { main } from "./main";

process.exitCode = await main(process.argv.slice(2));
