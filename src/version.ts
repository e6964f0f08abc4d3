/** baton's version, printed by `baton version` and served in status. */
export const VERSION = "0.1.0";
