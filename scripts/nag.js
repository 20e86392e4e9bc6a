#!/usr/bin/env node
// Runs cdk-nag's AwsSolutionsChecks over synthesized CloudFormation
// templates, so that neither this module nor its consumers depend on
// cdk-nag's Go bindings (test/nag_test.go runs it over every example).
//
//   node scripts/nag.js TEMPLATE.template.json...
//
// Each template is included (aws-cdk-lib's cloudformation_include.CfnInclude)
// into a stack of a fresh App of its own, with its parameters, conditions,
// mappings and rules. The include keeps each resource's Metadata, which is
// where the cdk_nag suppressions that this library writes
// (constructs/nagsuppress) and cdk-nag's own NagSuppressions sit, and cdk-nag
// reads them from there; a template-wide cdk_nag entry is given to the stack.
// Every unsuppressed error or warning is printed on stdout as
//
//   TEMPLATE: PATH: RULE: MESSAGE
//
// PATH being the resource's aws:cdk:path when the template has it (its
// logical id otherwise). A summary per template goes to stderr. The exit
// status is 1 when there is any finding, 2 when a template cannot be
// checked at all.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
let cdk, CfnInclude, AwsSolutionsChecks;
try {
  cdk = require('aws-cdk-lib');
  ({ CfnInclude } = require('aws-cdk-lib/cloudformation-include'));
  ({ AwsSolutionsChecks } = require('cdk-nag'));
} catch (err) {
  process.stderr.write(`nag.js: ${err.message}\nnag.js: run npm ci in the repository root (package.json pins cdk-nag and aws-cdk-lib)\n`);
  process.exit(2);
}

// The CloudFormation functions CfnInclude parses; a template that uses
// another one (such as Fn::GetStackOutput, Fn::Length or Fn::ToJsonString)
// gets it replaced, for the check only, by an Fn::ImportValue of its own
// text: an unresolved value from outside the template, which is what the
// rules see for any reference.
const PARSED = new Set([
  'Ref', 'Condition', 'Fn::GetAtt', 'Fn::Join', 'Fn::Cidr', 'Fn::FindInMap', 'Fn::Select',
  'Fn::GetAZs', 'Fn::ImportValue', 'Fn::Split', 'Fn::Transform', 'Fn::Base64', 'Fn::If',
  'Fn::Equals', 'Fn::And', 'Fn::Not', 'Fn::Or', 'Fn::Sub',
]);

function replaceUnparsed(value, replaced) {
  if (Array.isArray(value)) {
    return value.map((v) => replaceUnparsed(v, replaced));
  }
  if (value === null || typeof value !== 'object') {
    return value;
  }
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0].startsWith('Fn::') && !PARSED.has(keys[0])) {
    replaced.add(keys[0]);
    return { 'Fn::ImportValue': `${keys[0]} ${JSON.stringify(value[keys[0]])}` };
  }
  const out = {};
  for (const k of keys) {
    out[k] = replaceUnparsed(value[k], replaced);
  }
  return out;
}

// check includes one template and returns its unsuppressed findings.
function check(templatePath) {
  const template = JSON.parse(fs.readFileSync(templatePath, 'utf8'));
  // Rules (CheckBootstrapVersion) use their own functions, which the
  // include parses as such; only the resources need the replacement.
  const replaced = new Set();
  const resources = replaceUnparsed(template.Resources ?? {}, replaced);
  const outputs = replaceUnparsed(template.Outputs ?? {}, replaced);
  const included = { ...template, Resources: resources, Outputs: outputs };
  if (template.Outputs === undefined) {
    delete included.Outputs;
  }
  // A template-wide cdk_nag entry goes to the stack's templateOptions
  // (below), where cdk-nag reads it: not through the include as well.
  const stackSuppressions = template.Metadata?.cdk_nag;
  if (stackSuppressions !== undefined) {
    const { cdk_nag: _, ...rest } = template.Metadata;
    included.Metadata = rest;
    if (Object.keys(rest).length === 0) {
      delete included.Metadata;
    }
  }

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'nag-'));
  const file = path.join(scratch, 'template.json');
  fs.writeFileSync(file, JSON.stringify(included));
  try {
    // CDK's own template validation is not what this checks (cfn-lint
    // covers the templates in test/cfnlint_test.go).
    const app = new cdk.App({ outdir: path.join(scratch, 'cdk.out'), builtinCloudFormationValidation: false });
    // No synthesizer parameters or rules of its own: the template has
    // CDK's BootstrapVersion parameter and rule already.
    const stack = new cdk.Stack(app, 'Nag', {
      synthesizer: new cdk.DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
    });
    new CfnInclude(stack, 'Template', { templateFile: file });
    if (stackSuppressions !== undefined) {
      stack.templateOptions.metadata = { ...(stack.templateOptions.metadata ?? {}), cdk_nag: stackSuppressions };
    }
    cdk.Aspects.of(app).add(new AwsSolutionsChecks({ reports: false }));
    const assembly = app.synth();

    const label = (constructPath) => {
      // /Nag/Template/LogicalId -> the resource's original path.
      const parts = constructPath.split('/').filter(Boolean);
      const logicalId = parts[0] === 'Nag' && parts[1] === 'Template' && parts.length > 2 ? parts[2] : undefined;
      const resource = logicalId !== undefined ? template.Resources?.[logicalId] : undefined;
      if (resource === undefined) {
        return constructPath;
      }
      return resource.Metadata?.['aws:cdk:path'] ?? logicalId;
    };
    const findings = [];
    for (const artifact of assembly.stacks) {
      for (const m of artifact.messages) {
        if (m.level !== 'error' && m.level !== 'warning') {
          continue;
        }
        const text = String(m.entry.data).trim();
        const match = /^(\S+?): ([\s\S]*)$/.exec(text);
        const rule = match ? match[1] : m.level;
        const message = (match ? match[2] : text).split('\n')[0];
        findings.push(`${templatePath}: ${label(m.id)}: ${rule}: ${message}`);
      }
    }
    return {
      findings: findings.sort(),
      resources: Object.keys(template.Resources ?? {}).length,
      replaced: [...replaced].sort(),
    };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function main(args) {
  if (args.length === 0) {
    process.stderr.write('usage: node scripts/nag.js TEMPLATE.template.json...\n');
    return 2;
  }
  let total = 0;
  for (const templatePath of args) {
    let result;
    try {
      result = check(templatePath);
    } catch (err) {
      process.stderr.write(`nag.js: ${templatePath}: cannot check: ${err && err.stack ? err.stack : err}\n`);
      return 2;
    }
    for (const f of result.findings) {
      process.stdout.write(f + '\n');
    }
    const note = result.replaced.length > 0 ? ` (checked with ${result.replaced.join(', ')} as Fn::ImportValue)` : '';
    process.stderr.write(`nag.js: ${templatePath}: ${result.resources} resources, ${result.findings.length} unsuppressed findings${note}\n`);
    total += result.findings.length;
  }
  return total > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
