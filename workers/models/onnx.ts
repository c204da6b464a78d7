import protobuf from 'protobufjs';

/**
 * The part of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto, IR version 8)
 * that Sluice writes and inspects, with the upstream field numbers. Fields not
 * listed are skipped on decode, so any valid model still decodes.
 */
const ONNX_SUBSET = `
syntax = "proto3";
package onnx;
message StringStringEntryProto { string key = 1; string value = 2; }
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
message AttributeProto {
  string name = 1; float f = 2; int64 i = 3; bytes s = 4; TensorProto t = 5;
  repeated float floats = 7; repeated int64 ints = 8; repeated bytes strings = 9; int32 type = 20;
}
message NodeProto {
  repeated string input = 1; repeated string output = 2; string name = 3; string op_type = 4;
  repeated AttributeProto attribute = 5; string doc_string = 6; string domain = 7;
}
message TensorProto {
  repeated int64 dims = 1; int32 data_type = 2; repeated float float_data = 4;
  string name = 8; bytes raw_data = 9;
}
message TensorShapeProto {
  message Dimension { int64 dim_value = 1; string dim_param = 2; }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  Tensor tensor_type = 1;
}
message ValueInfoProto { string name = 1; TypeProto type = 2; string doc_string = 3; }
message GraphProto {
  repeated NodeProto node = 1; string name = 2; repeated TensorProto initializer = 5; string doc_string = 10;
  repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12;
}
message ModelProto {
  int64 ir_version = 1; string producer_name = 2; string producer_version = 3; string domain = 4;
  int64 model_version = 5; string doc_string = 6; GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8; repeated StringStringEntryProto metadata_props = 14;
}
`;

const root = protobuf.parse(ONNX_SUBSET, { keepCase: true }).root;
const ModelProtoType = root.lookupType('onnx.ModelProto');

/** TensorProto.DataType values used here. */
export const FLOAT = 1;
export const INT64 = 7;
/** AttributeProto.AttributeType values used here. */
export const ATTR_INT = 2;

export interface Dimension { dim_value?: number; dim_param?: string }
export interface ValueInfo {
  name: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim?: Dimension[] } } };
  doc_string?: string;
}
export interface Tensor { name: string; dims: number[]; data_type: number; raw_data?: Uint8Array; float_data?: number[] }
export interface Attribute { name: string; type: number; i?: number; f?: number; ints?: number[] }
export interface Node { input: string[]; output: string[]; name?: string; op_type: string; domain?: string; attribute?: Attribute[] }
export interface Graph { name: string; node: Node[]; initializer?: Tensor[]; input: ValueInfo[]; output: ValueInfo[]; doc_string?: string }
export interface Model {
  ir_version: number;
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: number;
  doc_string?: string;
  graph?: Graph;
  opset_import: { domain?: string; version: number }[];
  metadata_props?: { key: string; value: string }[];
}

export function encodeModel(m: Model): Uint8Array {
  const err = ModelProtoType.verify(m);
  if (err) throw new Error(`invalid ONNX model: ${err}`);
  return ModelProtoType.encode(ModelProtoType.fromObject(m)).finish();
}

/** Decodes an ONNX file; throws with a readable message if it is not one. */
export function decodeModel(bytes: Uint8Array): Model {
  const msg = ModelProtoType.decode(bytes);
  return ModelProtoType.toObject(msg, { longs: Number, bytes: Uint8Array, defaults: false, arrays: true }) as unknown as Model;
}

/** A float32 tensor stored as little-endian raw_data, so the bytes are exact. */
export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): Tensor {
  const data = new Float32Array(values);
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return { name, dims, data_type: FLOAT, raw_data: raw };
}

export function tensorInput(name: string, dims: (number | string)[]): ValueInfo {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

export function metadata(m: Model): Map<string, string> {
  return new Map((m.metadata_props ?? []).map((p) => [p.key, p.value]));
}
