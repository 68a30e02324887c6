// Batch-dependent integers rebuilt from one place: the batch size read once from the image input's
// shape (Shape -> Slice [0:1]), then a*B + c per element and Concat into the vector a shape
// input needs. Used where a shape value cannot be a constant (Expand to the batch, ...).
import { DataType, type NodeProto } from '../proto.js';
import { GraphBuilder } from '../builder.js';
import { isLin, type SymInt } from '../shapes/sym.js';

export class BatchSource {
  private batch?: string;

  constructor(
    readonly b: GraphBuilder,
    /** A graph input whose axis 0 is the batch size. */
    readonly input: string,
  ) {}

  /** int64 [1] holding B. */
  batchVector(): string {
    if (!this.batch) {
      const shape = this.b.op('Shape', [this.input]);
      this.batch = this.b.slice(shape, [0], [1], [0]);
    }
    return this.batch;
  }

  /** int64 [n] holding the given elements (constants and a*B + c). */
  vector(elems: readonly SymInt[], output?: string): string {
    const parts: string[] = [];
    let run: bigint[] = [];
    const flush = () => {
      if (run.length) parts.push(this.b.constI64(run));
      run = [];
    };
    for (const e of elems) {
      if (!isLin(e)) {
        run.push(e);
        continue;
      }
      flush();
      let t = this.batchVector();
      if (e.a !== 1n) t = this.b.op('Mul', [t, this.b.constI64([e.a])]);
      if (e.c !== 0n) t = this.b.op('Add', [t, this.b.constI64([e.c])]);
      parts.push(t);
    }
    flush();
    if (parts.length === 0) parts.push(this.b.constI64([], [0]));
    if (parts.length === 1) return output ? this.b.op('Identity', [parts[0]!], {}, output) : parts[0]!;
    return this.b.op('Concat', parts, { axis: 0 }, output);
  }

  /** A tensor of the given dims and integer type holding `elems` (row-major). */
  tensor(elems: readonly SymInt[], dims: readonly number[], dataType: DataType, output?: string): string {
    const needsReshape = dims.length !== 1;
    const needsCast = dataType !== DataType.INT64;
    let t = this.vector(elems, needsReshape || needsCast ? undefined : output);
    if (needsReshape) t = this.b.op('Reshape', [t, this.b.constI64([...dims], [dims.length])], {}, needsCast ? undefined : output);
    if (needsCast) t = this.b.op('Cast', [t], { to: dataType }, output);
    return t;
  }

  get nodes(): NodeProto[] {
    return this.b.nodes;
  }
}
