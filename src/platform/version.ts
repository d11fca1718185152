// The erp-edge version: what `/` reports and what a blueprint's `engines["erp-edge"]` range is checked against.
export const VERSION = "0.1.0";
