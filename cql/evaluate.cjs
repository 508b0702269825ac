// Run a CQL library's ELM with the reference engine (cql-execution + cql-exec-fhir, FHIR 4.0.1) on FHIR
// Bundles, one patient per Bundle, many per run:
//   node cql/evaluate.cjs schemas/cql/NeckcheckEscalation.json < cases.jsonl > results.jsonl
// Each input line: {"id": "...", "bundle": {Bundle}, "evaluationTime": "2026-03-10T09:00:00Z",
// "explicitAsOf": false, "expressions": ["Risk", ...]}. Only "bundle" is required: the evaluation time
// defaults to Bundle.timestamp (as neckcheck's $assess does; else the library uses Now()), the
// expressions to the library's outputs. Each output line: {"id", "results": {name: value}} or {"id", "error"}.
// cql-exec-fhir needs a Patient resource in each Bundle: when there is none, one is added with the id of the
// first Patient subject (a harness convenience; neckcheck itself reads subjects only).
"use strict";
const fs = require("node:fs");
const readline = require("node:readline");
const cql = require("cql-execution");
const cqlFhir = require("cql-exec-fhir");

const OUTPUTS = ["Risk", "Status", "Proposed Orders", "Rules Fired", "Facts To Ask"];
const library = new cql.Library(JSON.parse(fs.readFileSync(process.argv[2], "utf8")));
const codeService = new cql.CodeService({});
const source = cqlFhir.PatientSource.FHIRv401(); // parses the FHIR model info: once, then reset per patient

function withPatient(bundle) {
  const entries = bundle.entry || [];
  if (entries.some((e) => e.resource && e.resource.resourceType === "Patient")) return bundle;
  const subject = entries
    .map((e) => e.resource && e.resource.subject && e.resource.subject.reference)
    .find((ref) => typeof ref === "string" && /(^|\/)Patient\/[^/]+$/.test(ref));
  const id = subject ? subject.split("/").pop() : "patient";
  return { ...bundle, entry: [{ resource: { resourceType: "Patient", id } }, ...entries] };
}

function dateTime(text) {
  return text == null ? null : cql.DateTime.parse(text.replace("Z", "+00:00"));
}

function plain(value) {
  if (value == null) return null;
  if (value instanceof cql.DateTime || value instanceof cql.Date) return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object" && value.isQuantity) return { value: value.value, unit: value.unit };
  if (typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]));
  }
  return value;
}

async function evaluate(job) {
  const bundle = withPatient(job.bundle);
  const parameters = {
    "Evaluation Time": dateTime(job.evaluationTime === undefined ? bundle.timestamp : job.evaluationTime),
    "Explicit As Of": Boolean(job.explicitAsOf),
  };
  source.reset();
  source.loadBundles([bundle]);
  const results = await new cql.Executor(library, codeService, parameters).exec(source);
  const [patient] = Object.values(results.patientResults);
  const names = job.expressions || OUTPUTS;
  return Object.fromEntries(names.map((name) => [name, plain(patient[name])]));
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const job = JSON.parse(line);
    let answer;
    try {
      answer = { id: job.id, results: await evaluate(job) };
    } catch (error) {
      answer = { id: job.id, error: String((error && error.stack) || error) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
}

main().catch((error) => {
  process.stderr.write(String((error && error.stack) || error) + "\n");
  process.exitCode = 1;
});
