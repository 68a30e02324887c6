// Class-level view of neuron paths: how often each (layer, neuron) appears on the paths of a
// class's images, each class's preferred path, and class-to-class similarity of those tables.
import { cosineSimilarityMatrix } from './similarity.js';
import { argmax } from './stats.js';

export interface ClassAggregate {
  classes: number;
  layers: number;
  ffn: number;
  /** counts[c][l][j], flattened [classes, layers, ffn]. */
  counts: Int32Array;
  /** Images counted per class. */
  images: Int32Array;
  /** Per class: the most frequent neuron per layer (ties to the lowest index), or null if no image. */
  preferred: (number[] | null)[];
  /** [classes, classes] cosine similarity of the flattened count tables (zero vs zero = 1, zero vs other = 0). */
  similarity: Float64Array;
  /** Per class: images whose whole path equals the class's preferred path (0 without images). */
  pathShared: Int32Array;
  /** Per class and layer: share of the class's images whose path has the preferred neuron there (null: no image). */
  preferredShare: (number[] | null)[];
}

/** Aggregate one path (one neuron per layer) per image, grouped by class. */
export function aggregateByClass(paths: number[][], classOf: number[], classes: number, layers: number, ffn: number): ClassAggregate {
  const counts = new Int32Array(classes * layers * ffn);
  const images = new Int32Array(classes);
  paths.forEach((p, i) => {
    const c = classOf[i]!;
    images[c]!++;
    p.forEach((j, l) => counts[(c * layers + l) * ffn + j]!++);
  });
  const preferred = Array.from({ length: classes }, (_, c) =>
    images[c] ? Array.from({ length: layers }, (_, l) => argmax(counts, (c * layers + l) * ffn, (c * layers + l + 1) * ffn)) : null,
  );
  const similarity = cosineSimilarityMatrix(counts, classes, layers * ffn);
  const pathShared = new Int32Array(classes);
  paths.forEach((p, i) => {
    const pref = preferred[classOf[i]!]!;
    if (p.every((j, l) => j === pref[l])) pathShared[classOf[i]!]!++;
  });
  const preferredShare = preferred.map((pref, c) => (pref ? pref.map((j, l) => counts[(c * layers + l) * ffn + j]! / images[c]!) : null));
  return { classes, layers, ffn, counts, images, preferred, similarity, pathShared, preferredShare };
}
