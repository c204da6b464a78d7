/** One page of records, with views of several widths on the same bytes. */
export interface Page {
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
  /** A Buffer over the same bytes, made when first needed. */
  buf?: Buffer;
}
