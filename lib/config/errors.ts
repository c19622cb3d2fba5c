/**
 * The one error type of the config package.
 *
 * @module
 */

/**
 * A bad config: unknown key, wrong type, YAML syntax, missing file or a
 * value that fails validation. The message names the file or flag, the key
 * and the value, and says what to do.
 */
export class ConfigError extends Error {
  /** The dotted key at fault (`"train.epochs"`), when there is one. */
  readonly key?: string;
  /** Where the bad value came from: a file (`configs/x.yaml:3:5`) or `"command line"`. */
  readonly source?: string;
  /** One line per problem, when validation found several. */
  readonly problems: readonly string[];

  constructor(
    message: string,
    opts: { key?: string; source?: string; problems?: readonly string[] } = {},
  ) {
    super(message);
    this.name = "ConfigError";
    this.key = opts.key;
    this.source = opts.source;
    this.problems = Object.freeze([...(opts.problems ?? [message])]);
  }
}
