/** The part of lzma-native this project uses (the package ships no types). */
declare module 'lzma-native' {
  import type { Duplex } from 'node:stream';
  interface StreamOptions {
    preset?: number;
    check?: number;
    threads?: number;
    synchronous?: boolean;
  }
  const lzma: {
    CHECK_CRC32: number;
    CHECK_CRC64: number;
    CHECK_SHA256: number;
    PRESET_EXTREME: number;
    createCompressor(options?: StreamOptions): Duplex;
    createDecompressor(options?: StreamOptions): Duplex;
  };
  export default lzma;
}
