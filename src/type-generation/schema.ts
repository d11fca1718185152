// Requests and responses of type generation (epilot's GenerateTypesRequest/Response,
// CommitTypesRequest/Response, GenerateTypesPreviewResponse and TypeDescriptor).
import { z } from "@hono/zod-openapi";
import { isPrototypeKey } from "../platform/paths";

/** npm's package name rules: lowercase, optionally scoped, URL-safe. */
const PackageName = z
  .string()
  .max(214)
  .regex(/^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/, "an npm package name such as @epilot/hems-cleverpv")
  .openapi({ example: "@epilot/hems-cleverpv" });

const SemVer = z
  .string()
  .max(64)
  .regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/, "a semantic version such as 1.0.0")
  .openapi({ example: "1.0.0" });

/**
 * The types an annotation may name: primitives, `unknown`, `Date`-free JSON types, their arrays and
 * unions (`string | null`, `number[]`). A closed grammar, so an annotation cannot write code.
 */
const ANNOTATION_TYPE = /^(string|number|boolean|null|unknown|Record<string, unknown>)(\[\])?( \| (string|number|boolean|null|unknown|Record<string, unknown>)(\[\])?)*$/;

const AnnotationMap = z
  .record(
    z.string().min(1).max(512).refine((path) => !path.split(/\.|\[\]/).some(isPrototypeKey), "must not name __proto__, constructor or prototype"),
    z.string().max(200).regex(ANNOTATION_TYPE, "a type such as string, number, boolean, null, unknown, string[] or string | null"),
  )
  .refine((m) => Object.keys(m).length <= 500, "at most 500 annotations");

export const TypeAnnotations = z
  .object({ request: AnnotationMap.optional(), response: AnnotationMap.optional() })
  .openapi("TypeAnnotationsInput", { description: "Types for request and response fields, keyed by dot-path (\"vendors[].id\" -> \"string\")" });
export type TypeAnnotations = z.infer<typeof TypeAnnotations>;

const AnnotationsBySlug = z
  .record(z.string().max(255), TypeAnnotations)
  .refine((m) => Object.keys(m).length <= 200, "at most 200 use cases")
  .optional();

export const GenerateTypesRequest = z
  .object({
    package_name: PackageName,
    version: SemVer,
    description: z.string().max(1000).optional(),
    domain_package: PackageName.optional().openapi({ description: "Domain standard package to extend", example: "@epilot/hems" }),
    domain_map_name: z
      .string()
      .max(128)
      .regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, "a TypeScript identifier")
      .optional()
      .openapi({ description: "Name of the domain UseCaseMap to extend", example: "HemsUseCaseMap" }),
    annotations: AnnotationsBySlug,
  })
  .refine((r) => (r.domain_package === undefined) === (r.domain_map_name === undefined), { path: ["domain_map_name"], message: "domain_package and domain_map_name go together" })
  .openapi("GenerateTypesRequest");
export type GenerateTypesRequest = z.infer<typeof GenerateTypesRequest>;

export const CommitTypesRequest = z
  .object({ package_name: PackageName, version: SemVer, annotations: AnnotationsBySlug })
  .openapi("CommitTypesRequest");
export type CommitTypesRequest = z.infer<typeof CommitTypesRequest>;

export const TypeDescriptor = z
  .object({
    kind: z.enum(["object", "array", "string", "number", "boolean", "null", "unknown", "union"]),
    properties: z.record(z.string(), z.unknown()).optional().openapi({ description: "For kind=object: its properties' descriptors" }),
    items: z.unknown().optional().openapi({ description: "For kind=array: the items' descriptor" }),
    source: z.string().optional().openapi({ description: "For kind=unknown: the JSONata or field path that produced the value" }),
    variants: z.array(z.unknown()).optional().openapi({ description: "For kind=union: the variants' descriptors" }),
  })
  .openapi("TypeDescriptor");

export const UseCaseTypePreview = z
  .object({
    slug: z.string(),
    name: z.string().optional(),
    request_shape: TypeDescriptor,
    response_shape: TypeDescriptor,
    existing_annotations: z.object({ request: z.record(z.string(), z.string()).optional(), response: z.record(z.string(), z.string()).optional() }).optional(),
  })
  .openapi("UseCaseTypePreview");
export type UseCaseTypePreview = z.infer<typeof UseCaseTypePreview>;

export const DetectedChange = z.object({ slug: z.string(), field: z.string(), type: z.enum(["breaking", "non-breaking"]), description: z.string() });
export type DetectedChange = z.infer<typeof DetectedChange>;

export const GenerateTypesPreviewResponse = z
  .object({
    integration_name: z.string().optional(),
    use_cases: z.array(UseCaseTypePreview),
    previous_version: z.string().optional(),
    suggested_version: z.string().optional(),
    suggested_bump: z.enum(["major", "minor"]).optional(),
    detected_changes: z.array(DetectedChange).optional(),
  })
  .openapi("GenerateTypesPreviewResponse");
export type GenerateTypesPreviewResponse = z.infer<typeof GenerateTypesPreviewResponse>;

export const GenerateTypesResponse = z
  .object({ package_name: z.string(), version: z.string(), files: z.record(z.string(), z.string()), warnings: z.array(z.string()).optional() })
  .openapi("GenerateTypesResponse");
export type GenerateTypesResponse = z.infer<typeof GenerateTypesResponse>;

export const CommitTypesResponse = z.object({ committed: z.boolean(), warnings: z.array(z.string()).optional() }).openapi("CommitTypesResponse");
export type CommitTypesResponse = z.infer<typeof CommitTypesResponse>;
