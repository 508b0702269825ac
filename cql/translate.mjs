// CQL -> ELM JSON with the reference translator (cqframework's JavaScript build: no Java).
//   node cql/translate.mjs Library.cql > Library.json
// The FHIR 4.0.1 model info is the one cql-exec-fhir ships; units are checked with UCUM (@lhncbc/ucum-lhc).
// Translator options are its defaults. Every message (error, warning, info) is in the ELM's annotations;
// the exit status is 1 when there is an error.
import { webcrypto } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import ucum from "@lhncbc/ucum-lhc";
import { SystemModelInfoProvider } from "@cqframework/cql/cql";
import {
  CqlTranslator,
  LibraryManager,
  ModelManager,
  createModelInfoProvider,
  createUcumService,
  stringAsSource,
} from "@cqframework/cql/cql-to-elm";

// The Kotlin build calls the global Web Crypto, a global from Node.js 19 on; Debian 12's Node.js is 18.
globalThis.crypto ??= webcrypto;

const require = createRequire(import.meta.url);
const modelInfo = readFileSync(require.resolve("cql-exec-fhir/lib/modelInfos/fhir-modelinfo-4.0.1.xml"), "utf8");
const units = ucum.UcumLhcUtils.getInstance();

const ucumService = createUcumService(
  (value, from, to) => {
    const converted = units.convertUnitTo(from, Number(value), to);
    if (converted.status !== "succeeded") throw new Error(converted.msg.join("; "));
    return String(converted.toVal);
  },
  (unit) => {
    const checked = units.validateUnitString(unit, true);
    return checked.status === "valid" ? null : `${unit}: ${checked.msg.join("; ")}`;
  },
  () => { throw new Error("UCUM multiplication is not used by this library"); },
  () => { throw new Error("UCUM division is not used by this library"); },
);

const models = new ModelManager();
models.modelInfoLoader.registerModelInfoProvider(
  createModelInfoProvider((id, system, version) =>
    id === "FHIR" && version === "4.0.1" ? stringAsSource(modelInfo) : null),
);
models.modelInfoLoader.registerModelInfoProvider(new SystemModelInfoProvider());
const libraries = new LibraryManager(models, undefined, undefined, ucumService);

const translator = CqlTranslator.fromText(readFileSync(process.argv[2] ?? 0, "utf8"), libraries);
process.stdout.write(translator.toJson() + "\n");
process.exitCode = translator.errors.asJsReadonlyArrayView().length > 0 ? 1 : 0;
