/** node-gyp-build: loads DIR/build/Release/*.node, else the prebuild in DIR/prebuilds/ for this platform, arch and libc. */
declare module 'node-gyp-build' {
  function nodeGypBuild(dir: string): unknown;
  export default nodeGypBuild;
}
