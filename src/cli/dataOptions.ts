// Shared commander options for choosing images and how they are preprocessed (every command
// that runs a model on images uses these), and their conversion to PreprocessOverrides.
import { Option, type Command } from 'commander';
import { INTERPOLATIONS, type Interpolation } from '../data/resize.js';
import type { NormPreset } from '../data/normalize.js';
import { parseFloats, parseSize, type PreprocessOverrides } from '../data/preprocess.js';

export interface DataFlags {
  images?: string;
  skipBadImages?: boolean;
  labels?: string;
  resize?: string;
  crop?: string;
  interpolation?: Interpolation;
  normalize?: NormPreset;
  mean?: string;
  std?: string;
}

/** --images, --labels and the preprocessing overrides. */
export function addDataOptions(cmd: Command, opts: { imagesRequired?: boolean } = {}): Command {
  const images = new Option(
    '--images <path>',
    'images: a folder of class subfolders (sorted names = labels 0..N-1), a flat folder, a .txt list, a file,label .csv, one image, or an MNIST IDX file',
  );
  if (opts.imagesRequired) images.makeOptionMandatory(true);
  cmd.addOption(images);
  cmd.option('--labels <file>', 'labels for a flat folder or list: CSV with file,label rows (0-based class indices); for IDX images, the idx1 labels file');
  cmd.option('--resize <size>', 'torchvision Resize: N resizes the shorter side to N, HxW resizes exactly (default: from the model input)');
  cmd.option('--crop <size>', 'center crop N or HxW after the resize (default: the model input size when --resize N is given)');
  cmd.addOption(new Option('--interpolation <mode>', 'resampling filter, exactly as PIL').choices(INTERPOLATIONS));
  cmd.addOption(new Option('--normalize <preset>', 'imagenet (0.485,0.456,0.406 / 0.229,0.224,0.225), inception (0.5 / 0.5) or none (0..1)').choices(['imagenet', 'inception', 'none']));
  cmd.option('--mean <values>', 'per-channel mean after scaling to 0..1, e.g. 0.5,0.5,0.5 (overrides the preset)');
  cmd.option('--std <values>', 'per-channel std, e.g. 0.5,0.5,0.5 (overrides the preset)');
  return cmd;
}

/** --skip-bad-images: for commands that can leave out images they cannot read (the default stops, naming the file). */
export function addSkipBadImagesOption(cmd: Command): Command {
  cmd.option('--skip-bad-images', 'leave out images that cannot be read or decoded: each is named on stderr, listed in the report and counted (default: stop at the first, naming it, exit 2)', false);
  return cmd;
}

export function preprocessOverridesOf(f: DataFlags): PreprocessOverrides {
  const o: PreprocessOverrides = {};
  if (f.resize !== undefined) o.resize = parseSize(f.resize, '--resize');
  if (f.crop !== undefined) o.crop = parseSize(f.crop, '--crop');
  if (f.interpolation) o.interpolation = f.interpolation;
  if (f.normalize) o.normalize = f.normalize;
  if (f.mean !== undefined) o.mean = parseFloats(f.mean, '--mean');
  if (f.std !== undefined) o.std = parseFloats(f.std, '--std');
  return o;
}
