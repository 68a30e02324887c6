// Finding the images to analyse and their labels: a folder of class subfolders (torchvision
// ImageFolder order), a flat folder, a .txt list, a single file, or an IDX pair; labels CSV.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { badInput } from '../errors.js';
import { IMAGE_EXTENSIONS, isImagePath } from './decode.js';
import { idxImages, idxLabels, looksLikeIdx, readIdx } from './idx.js';

export interface DataItem {
  /** Stable id for reports: path relative to the input root with '/' separators, or `<idx file>#<index>`. */
  id: string;
  /** Absolute path of an image file. */
  path?: string;
  /** An image inside an IDX file. */
  idx?: { file: string; index: number };
  label?: number;
}

export type SourceKind = 'class-folders' | 'folder' | 'list' | 'file' | 'idx';

export interface DataSource {
  kind: SourceKind;
  /** The input as the user gave it. */
  input: string;
  /** Absolute folder ids are relative to. */
  root: string;
  items: DataItem[];
  /** class-folders: subfolder names in sorted order; index = label. */
  classes?: string[];
  /** Where labels came from (CSV, IDX labels file, or the class folders). */
  labelsFrom?: string;
  idx?: { images: string; labels?: string; height: number; width: number; channels: number };
}

export interface DiscoverOptions {
  /** A CSV `file,label` (header optional) or, for IDX input, an IDX labels file. */
  labels?: string;
}

const byCodepoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const toPosix = (p: string) => p.split(path.sep).join('/');

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p); // follows symlinks, as torchvision's os.walk(followlinks=True)
  } catch {
    return null;
  }
}

/** Image files under `dir`, in the order of Python's `sorted(os.walk(dir))` then sorted file names. */
function walkImages(dir: string): string[] {
  const groups: Array<{ dir: string; files: string[] }> = [];
  const seen = new Set<string>();
  const visit = (d: string) => {
    let real: string;
    try {
      real = fs.realpathSync(d);
    } catch {
      return;
    }
    if (seen.has(real)) return;
    seen.add(real);
    const files: string[] = [];
    for (const name of fs.readdirSync(d)) {
      const full = path.join(d, name);
      const st = statOrNull(full);
      if (!st) continue;
      if (st.isDirectory()) visit(full);
      else if (st.isFile() && isImagePath(name)) files.push(name);
    }
    groups.push({ dir: d, files: files.sort(byCodepoint) });
  };
  visit(dir);
  groups.sort((a, b) => byCodepoint(a.dir, b.dir));
  return groups.flatMap((g) => g.files.map((f) => path.join(g.dir, f)));
}

function noImages(where: string): never {
  throw badInput(
    `${where} contains no images (${IMAGE_EXTENSIONS.join(' ')}); point the input at a folder of images or of class subfolders, a .txt list of image paths, an image file, or an MNIST-style IDX file`,
  );
}

function findIdxPair(dir: string): { images: string; labels?: string } | null {
  const names = fs.readdirSync(dir).sort(byCodepoint);
  const images = names.find((n) => /images?[-_.]idx3[-_.]ubyte(\.gz)?$/i.test(n) || /idx3[-_.]ubyte(\.gz)?$/i.test(n));
  if (!images) return null;
  const labels = siblingLabels(path.join(dir, images));
  return { images: path.join(dir, images), labels };
}

/** `t10k-images-idx3-ubyte.gz` -> `t10k-labels-idx1-ubyte.gz` (or without .gz) when it exists. */
function siblingLabels(imagesFile: string): string | undefined {
  const base = path.basename(imagesFile);
  const stem = base.replace(/images?/i, 'labels').replace(/idx3/i, 'idx1');
  if (stem === base) return undefined;
  for (const cand of [stem, stem.replace(/\.gz$/i, ''), stem.endsWith('.gz') ? stem : stem + '.gz']) {
    const p = path.join(path.dirname(imagesFile), cand);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

function idxSource(input: string, imagesFile: string, labelsFile: string | undefined, explicitLabels: boolean): DataSource {
  const img = idxImages(readIdx(imagesFile));
  const rel = path.basename(imagesFile);
  const items: DataItem[] = [];
  for (let i = 0; i < img.count; i++) items.push({ id: `${rel}#${i}`, idx: { file: imagesFile, index: i } });
  if (img.count === 0) noImages(imagesFile);
  const src: DataSource = {
    kind: 'idx',
    input,
    root: path.dirname(imagesFile),
    items,
    idx: { images: imagesFile, height: img.height, width: img.width, channels: img.channels },
  };
  if (labelsFile && (looksLikeIdx(labelsFile) || !explicitLabels)) {
    const labels = idxLabels(readIdx(labelsFile));
    if (labels.length !== img.count) {
      throw badInput(`${labelsFile} has ${labels.length} labels but ${imagesFile} has ${img.count} images; pass the labels file that belongs to these images`);
    }
    items.forEach((it, i) => (it.label = labels[i]));
    src.labelsFrom = labelsFile;
    src.idx!.labels = labelsFile;
  } else if (labelsFile) {
    applyLabelsCsv(src, labelsFile);
  }
  return src;
}

function readLines(file: string, what: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split(/\r?\n/);
  } catch (e) {
    throw badInput(`cannot read ${what} ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the path`, e);
  }
}

function listSource(input: string, listFile: string): DataSource {
  const dir = path.dirname(listFile);
  const items: DataItem[] = [];
  const ids = new Set<string>();
  readLines(listFile, 'image list').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const p = path.resolve(dir, line);
    const st = statOrNull(p);
    if (!st || !st.isFile()) throw badInput(`${listFile} line ${i + 1} names ${line}, which does not exist (paths are relative to the list's folder); fix or remove the line`);
    const id = toPosix(path.relative(dir, p));
    if (ids.has(id)) throw badInput(`${listFile} line ${i + 1} repeats ${line}; list each image once`);
    ids.add(id);
    items.push({ id, path: p });
  });
  if (items.length === 0) noImages(listFile);
  return { kind: 'list', input, root: dir, items };
}

export interface LabelRow {
  file: string;
  label: number;
  line: number;
}

/**
 * Parse a labels CSV: `file,label` per line (split at the last comma), blank lines and #-comments
 * ignored; a first line whose label field is not a number is a header.
 */
export function readLabelsCsv(file: string): LabelRow[] {
  const rows: LabelRow[] = [];
  let first = true;
  readLines(file, 'labels file').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const comma = line.lastIndexOf(',');
    const unq = (s: string) => s.trim().replace(/^"(.*)"$/, '$1');
    const name = comma < 0 ? '' : unq(line.slice(0, comma));
    const lab = comma < 0 ? '' : unq(line.slice(comma + 1));
    const isFirst = first;
    first = false;
    if (comma < 0 || !name) throw badInput(`${file} line ${i + 1} is not "file,label"; write one image and its integer class per line`);
    if (!/^[-+]?\d+$/.test(lab)) {
      if (isFirst && !Number.isFinite(Number(lab))) return; // a header such as "file,label"
      throw badInput(`${file} line ${i + 1}: label "${lab}" for ${name} is not an integer; labels must be class indices (0-based)`);
    }
    rows.push({ file: name, label: Number.parseInt(lab, 10), line: i + 1 });
  });
  return rows;
}

/** Attach CSV labels to `src.items`; every CSV row must name an image of the source. */
export function applyLabelsCsv(src: DataSource, csvFile: string): void {
  const rows = readLabelsCsv(csvFile);
  const byId = new Map<string, DataItem>();
  const byPath = new Map<string, DataItem>();
  for (const it of src.items) {
    byId.set(it.id, it);
    if (it.path) byPath.set(path.resolve(it.path), it);
  }
  const csvDir = path.dirname(path.resolve(csvFile));
  const given = new Map<DataItem, LabelRow>();
  for (const r of rows) {
    const key = toPosix(r.file).replace(/^\.\//, '');
    const it = byPath.get(path.resolve(csvDir, r.file)) ?? byId.get(key) ?? byPath.get(path.resolve(src.root, r.file));
    if (!it) {
      throw badInput(
        `${csvFile} line ${r.line} names ${r.file}, which is not among the ${src.items.length} images of ${src.input}; fix the name (relative to the labels file or the image folder) or remove the line`,
      );
    }
    const prev = given.get(it);
    if (prev && prev.label !== r.label) {
      throw badInput(`${csvFile} gives ${r.file} two labels (line ${prev.line}: ${prev.label}, line ${r.line}: ${r.label}); keep one`);
    }
    given.set(it, r);
    it.label = r.label;
  }
  src.labelsFrom = csvFile;
}

/**
 * Discover the images of `input`:
 * - a folder with subfolders that hold images: class folders, sorted names = label indices,
 *   images in `sorted(os.walk(...))` order (torchvision ImageFolder; loose top-level files are ignored);
 * - a folder of images: sorted file names, unlabelled unless a labels CSV is given;
 * - a folder holding `*idx3-ubyte[.gz]`, or such a file: IDX images with the sibling idx1 labels;
 * - a `.txt` file: one image path per line (relative to the list), in the list's order;
 * - a `.csv` file: `file,label` lines, used as both the list and the labels;
 * - any other file: a single image.
 */
export function discoverImages(input: string, opts: DiscoverOptions = {}): DataSource {
  const abs = path.resolve(input);
  const st = statOrNull(abs);
  if (!st) throw badInput(`${input} does not exist; pass a folder of images, a .txt list, an image file or an IDX file`);
  let src: DataSource;
  if (st.isDirectory()) {
    const entries = fs.readdirSync(abs).sort(byCodepoint);
    const dirs = entries.filter((n) => statOrNull(path.join(abs, n))?.isDirectory());
    const topImages = entries.filter((n) => isImagePath(n) && statOrNull(path.join(abs, n))?.isFile());
    const classFiles = dirs.map((d) => walkImages(path.join(abs, d)));
    if (classFiles.some((f) => f.length > 0)) {
      const items: DataItem[] = [];
      classFiles.forEach((files, label) => {
        for (const f of files) items.push({ id: toPosix(path.relative(abs, f)), path: f, label });
      });
      src = { kind: 'class-folders', input, root: abs, items, classes: dirs, labelsFrom: abs };
    } else if (topImages.length > 0) {
      src = { kind: 'folder', input, root: abs, items: topImages.map((n) => ({ id: n, path: path.join(abs, n) })) };
    } else {
      const pair = findIdxPair(abs);
      if (!pair) noImages(input);
      return idxSource(input, pair.images, opts.labels ?? pair.labels, opts.labels !== undefined);
    }
  } else if (/\.txt$/i.test(abs)) {
    src = listSource(input, abs);
  } else if (/\.csv$/i.test(abs)) {
    const rows = readLabelsCsv(abs);
    const dir = path.dirname(abs);
    const items: DataItem[] = rows.map((r) => {
      const p = path.resolve(dir, r.file);
      if (!statOrNull(p)?.isFile()) throw badInput(`${input} line ${r.line} names ${r.file}, which does not exist (paths are relative to the CSV's folder); fix or remove the line`);
      return { id: toPosix(path.relative(dir, p)), path: p, label: r.label };
    });
    if (items.length === 0) noImages(input);
    src = { kind: 'list', input, root: dir, items, labelsFrom: abs };
  } else if (!isImagePath(abs) && looksLikeIdx(abs)) {
    return idxSource(input, abs, opts.labels ?? siblingLabels(abs), opts.labels !== undefined);
  } else {
    src = { kind: 'file', input, root: path.dirname(abs), items: [{ id: path.basename(abs), path: abs }] };
  }
  if (opts.labels) applyLabelsCsv(src, opts.labels);
  return src;
}

/**
 * Check every label against the model's class count; a label outside 0..numClasses-1 is exit
 * code 2, naming the labels file (or the class folder) and the fix.
 */
export function checkLabelRange(src: DataSource, numClasses: number): void {
  if (src.kind === 'class-folders' && src.labelsFrom === src.root && src.classes && src.classes.length > numClasses) {
    const bad = src.classes[numClasses]!;
    throw badInput(
      `${src.input} has ${src.classes.length} class subfolders but the model has ${numClasses} classes (subfolder "${bad}" would be label ${numClasses}); remove the extra folders or pass a labels CSV`,
    );
  }
  for (const it of src.items) {
    if (it.label === undefined) continue;
    if (!Number.isInteger(it.label) || it.label < 0 || it.label >= numClasses) {
      throw badInput(
        `${src.labelsFrom ?? src.input} gives ${it.id} label ${it.label}, outside the model's classes 0..${numClasses - 1}; fix the label (labels are 0-based class indices)`,
      );
    }
  }
}

/** The source as a plain object for reports. */
export function describeSource(src: DataSource): Record<string, unknown> {
  const labelled = src.items.filter((i) => i.label !== undefined).length;
  return {
    kind: src.kind,
    input: src.input,
    root: src.root,
    count: src.items.length,
    labelled,
    ...(src.classes ? { classes: src.classes } : {}),
    ...(src.labelsFrom ? { labelsFrom: src.labelsFrom } : {}),
    ...(src.idx ? { idx: src.idx } : {}),
  };
}
