// Type-checked (not bundled) with bundler resolution: Node-only exports must not type-check in a browser build.
// @ts-expect-error readImage reads files: the browser entry does not have it.
import { readImage } from 'semi-drdnet';
// @ts-expect-error useDawn registers dawn.node: the browser entry does not have it.
import { useDawn } from 'semi-drdnet';

export const nodeOnly = [readImage, useDawn];
