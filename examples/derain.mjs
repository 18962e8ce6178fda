// @ts-check
// Derain a photo from code: the bundled weights, any image size (tiled), PNG/JPEG in and out.
//   node examples/derain.mjs rainy.png derained.png
import { loadDerainer, readImage, writeImage } from 'semi-drdnet';

const [input = new URL('./rainy-chelsea.png', import.meta.url).pathname, output = 'derained.png'] = process.argv.slice(2);
const derainer = await loadDerainer(); // or { weights: 'my.safetensors', device: myGpuDevice }
try {
  const image = await readImage(input);
  const result = await derainer.derain(image, { onProgress: (done, total) => total > 1 && console.log(`tile ${done}/${total}`) });
  await writeImage(output, result);
  console.log(`${input} (${image.width}x${image.height}) -> ${output}`);
} finally {
  derainer.dispose();
}
