/**
 * Creating variables without leftovers: `tf.variable(init)` keeps `init`
 * registered as a live tensor until it is disposed, so variables are made
 * inside a tidy scope, which disposes the initial values but never variables.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Run `fn` (which makes variables and objects owning them) in a tidy scope; return its result. */
export function makeVariables<T>(fn: () => T): T {
  let out: T | undefined;
  tf.tidy(() => {
    out = fn();
  });
  return out as T;
}
