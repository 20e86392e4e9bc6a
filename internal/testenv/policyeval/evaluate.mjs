#!/usr/bin/env node
// Evaluates IAM requests against identity and resource (key) policies with
// @cloud-copilot/iam-simulate, the npm package pinned in package.json as a
// test-only devDependency (AGPL: nothing users import may load it). Go's
// policyeval package writes every request of a batch to stdin and reads the
// answers from stdout, so that Node starts once per batch:
//
//   stdin:  [{"id": "...", "simulation": <iam-simulate Simulation>}, ...]
//   stdout: [{"id": "...", "decision": "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied",
//             "identity": "...", "resource": "...", "matched": ["identity:Name#Sid Allow", ...],
//             "ignoredContextKeys": [...], "error": "..."}, ...]
//
// Every request is evaluated in Strict mode: context keys missing from a
// request are missing, as they are to AWS. Exit status 2: the engine is not
// installed or the input is not readable (then nothing is written to stdout).
'use strict';

let runSimulation;
try {
  ({ runSimulation } = await import('@cloud-copilot/iam-simulate'));
} catch (err) {
  process.stderr.write(`evaluate.mjs: ${err.message}\nevaluate.mjs: run npm ci in the repository root (package.json pins @cloud-copilot/iam-simulate)\n`);
  process.exit(2);
}

let input = '';
for await (const chunk of process.stdin) {
  input += chunk;
}
let requests;
try {
  requests = JSON.parse(input);
  if (!Array.isArray(requests)) {
    throw new Error('expected a JSON array of {id, simulation}');
  }
} catch (err) {
  process.stderr.write(`evaluate.mjs: stdin: ${err.message}\n`);
  process.exit(2);
}

// The statements that matched the request, allow and deny, of the identity
// and resource analyses: which statements decided.
function matched(kind, analysis) {
  if (!analysis) {
    return [];
  }
  const name = (s) => {
    const id = s.explain?.identifier ?? '?';
    return s.policyId ? `${kind}:${s.policyId}#${id}` : `${kind}:#${id}`;
  };
  return [
    ...(analysis.denyStatements ?? []).map((s) => `${name(s)} Deny`),
    ...(analysis.allowStatements ?? []).map((s) => `${name(s)} Allow`),
  ];
}

const answers = [];
for (const { id, simulation } of requests) {
  try {
    const r = await runSimulation(simulation, { simulationMode: 'Strict' });
    if (r.resultType === 'error') {
      answers.push({ id, error: JSON.stringify(r.errors) });
      continue;
    }
    if (r.resultType !== 'single') {
      // A wildcard resource runs several simulations: the cases name one
      // resource each, so this is a mistake of the case.
      answers.push({ id, error: `resultType ${r.resultType}: give the request one resource ARN` });
      continue;
    }
    const a = r.result.analysis;
    answers.push({
      id,
      decision: r.overallResult,
      identity: a.identityAnalysis?.result ?? '',
      resource: a.resourceAnalysis?.result ?? '',
      matched: [...matched('identity', a.identityAnalysis), ...matched('resource', a.resourceAnalysis)],
      ignoredContextKeys: r.result.ignoredContextKeys ?? [],
    });
  } catch (err) {
    answers.push({ id, error: String(err?.stack ?? err) });
  }
}
process.stdout.write(JSON.stringify(answers));
