/** Test helper: tfjs on the cpu backend (deterministic, no setup), quiet. */
import * as tf from "@tensorflow/tfjs";
tf.enableProdMode();
await tf.setBackend("cpu");
export { tf };
