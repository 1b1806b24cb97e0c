/*
    Start of a run: --version, parameter validation against nextflow_schema.json, and the input
    channel of decoys, the same whether they come from --input or from --decoys/--natives. Also the
    function that writes the `versions` topic as MultiQC's software-versions YAML (softwareVersionsYaml)
    and the comparison refiners' registry as the pipeline reads it (refinerImages).
*/

include { validateParameters; paramsSummaryLog; samplesheetToList } from 'plugin/nf-schema'

workflow PIPELINE_INITIALISATION {

    take:
    version         // boolean: print the version and stop
    validate_params // boolean: validate params against nextflow_schema.json
    input           // string : samplesheet (id,decoy[,native]) or null
    decoys          // string : glob of decoy files or null
    natives         // string : folder of natives (with --decoys) or null

    main:
    if (version) {
        log.info "${workflow.manifest.name} ${workflow.manifest.version}"
        System.exit(0)
    }
    if (validate_params) {
        validateParameters()
    }
    log.info paramsSummaryLog(workflow)

    if (workflow.profile.tokenize(',').contains('summit') && !params.cluster_account) {
        error "-profile summit needs --cluster_account (the OLCF project that LSF charges, -P)."
    }
    def unknown_refiners = params.refiners.tokenize(',').findAll { name -> name != 'egr' && !refinerImages().containsKey(name) }
    if (unknown_refiners) {
        error "Unknown refiner(s) in --refiners: ${unknown_refiners.join(', ')}. Choose from egr, ${refinerImages().keySet().join(', ')} (egr/data/refiners.json)."
    }
    if (!input == !decoys) {
        error "Give exactly one of --input (a samplesheet) or --decoys (a quoted glob)."
    }

    if (input) {
        // Relative paths in a samplesheet are taken from the samplesheet's own folder, as
        // `egr run --input` does, so one samplesheet works from any launch directory.
        def base = file(input).parent
        ch_samples = channel
            .fromList(samplesheetToList(input, "${projectDir}/assets/schema_input.json"))
            .map { meta, decoy, reference -> [ meta, base.resolve(decoy), reference ? base.resolve(reference) : [] ] }
    } else {
        // A decoy's native is the file in --natives whose id is the decoy's id or its longest
        // prefix ending before a '_': decoys/1AK4_model_3.pdb -> natives/1AK4.pdb.gz.
        ch_native_by_id = natives
            ? channel.fromPath("${natives}/*", checkIfExists: true).map { f -> [ decoyId(f), f ] }.toList().map { pairs -> pairs.collectEntries() }
            : channel.value([:])
        ch_samples = channel
            .fromPath(decoys, checkIfExists: true)
            .map { f -> [ [ id: decoyId(f) ], f ] }
            .combine(ch_native_by_id)
            .map { meta, decoy, native_by_id -> [ meta, decoy, nativeFor(meta.id, native_by_id) ?: [] ] }
    }

    // Every decoy id names an output folder: two decoys with one id would overwrite each
    // other's results, so stop before any work is done.
    ch_samples
        .map { meta, decoy, reference -> meta.id }
        .toList()
        .map { ids -> ids.countBy { id -> id }.findAll { id, n -> n > 1 }.keySet() }
        .filter { duplicates -> duplicates }
        .map { duplicates -> error("Several decoys share the id(s) ${duplicates.join(', ')}: rename them or give explicit ids with --input.") }

    emit:
    samples = ch_samples // channel: [ val(meta), path(decoy), path(reference) or [] ]
}

// The decoy id `egr` derives from a file name (egr.structure.sanitize_id): the name without its
// structure suffixes (.gz .pdb .ent .cif .mmcif .pdbx), accents dropped, and every run of
// characters other than letters, digits, '.', '_' and '-' replaced by '_'.
// tests/test_nextflow.py checks this against the Python function.
def decoyId(path) {
    def name = path instanceof String ? path : path.name
    // Every trailing structure suffix at once, keeping at least one character before them (the
    // strict parser has no loops; the lazy prefix leaves the shortest stem, as the Python loop does).
    name = name.replaceFirst(/(?i)^(.+?)(\.(gz|pdb|ent|cif|mmcif|pdbx))+$/, '$1')
    def ascii = java.text.Normalizer.normalize(name, java.text.Normalizer.Form.NFKD).replaceAll(/[^\x00-\x7F]/, '')
    def safe = ascii.replaceAll(/[^A-Za-z0-9._-]+/, '_').replaceAll(/^[._-]+|[._-]+$/, '')
    return safe ?: 'decoy'
}

// The native of decoy `id` among natives keyed by their ids (see --natives): an exact id match,
// else the longest native id that starts the decoy id followed by '_'. null when none.
// tests/test_nextflow.py checks this on the bundled test data.
def nativeFor(id, native_by_id) {
    def key = native_by_id.keySet().findAll { n -> id == n || id.startsWith(n + '_') }.max { n -> n.size() }
    return key ? native_by_id[key] : null
}

// The comparison refiners that --refiners takes besides egr, each with the container image its
// BASELINE_REFINE tasks run in, in table order: the registry file that the egr package reads too
// (egr.layout.REFINERS_JSON), so a refiner added there needs no change here.
def refinerImages() {
    def registry = new groovy.json.JsonSlurper().parseText(file("${projectDir}/egr/data/refiners.json").text)
    return registry.refiners.collectEntries { entry -> [ (entry.name): entry.image ] }
}

// MultiQC's software-versions YAML (a `*_mqc_versions.yml`, as the versions.yml files of each step used to
// make it) from the [ task.process, tool, version ] tuples that the modules send to the `versions` topic:
// one mapping per process, under its full name, with its tools sorted by name; a tool whose tasks reported
// different versions lists them all, comma-separated, so no key repeats. Groovy only, no channels:
// tests/test_nextflow.py checks it on sample tuples.
def softwareVersionsYaml(entries) {
    def byProcess = entries.groupBy { entry -> entry[0].toString() }
    def blocks = byProcess.keySet().toSorted().collect { processName ->
        def byTool = byProcess[processName].groupBy { entry -> entry[1].toString() }
        def lines = byTool.keySet().toSorted().collect { tool ->
            def versions = byTool[tool].collect { entry -> entry[2].toString().trim() }.toUnique().toSorted()
            return "    ${tool}: ${versions.join(', ')}"
        }
        return ([ "\"${processName}\":" ] + lines).join('\n')
    }
    return blocks ? blocks.join('\n') + '\n' : ''
}
