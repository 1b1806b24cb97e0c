/*
========================================================================================
    EGR: refine and assess decoys (--workflow refine, the default)
========================================================================================
    decoy ─ PREPARE_GRAPHS (INGEST → MSMS_SURFACE → FEATURIZE) ─ EGR_REFINE (batches) ─┐
          └ (decoys with a graph) RUN_BASELINES (one module per comparison refiner) ───┤
    --select best-predicted: each decoy's structures ─ SELECT_BEST ─────────────────────┤
    models with a native ─ DOCKQ_SCORE ────────────────────────────────────────────────┤
    all per-decoy files ─ EVALUATE (summary.tsv, evaluation.*) ─ REPORT ─ MULTIQC ─────┘
    Only channel wiring here; every computation is an `egr` command inside a module.
----------------------------------------------------------------------------------------
*/

include { PREPARE_GRAPHS } from '../subworkflows/local/prepare_graphs'
include { RUN_BASELINES  } from '../subworkflows/local/run_baselines'
include { EGR_REFINE     } from '../modules/local/egr_refine'
include { DOCKQ_SCORE    } from '../modules/local/dockq_score'
include { SELECT_BEST    } from '../modules/local/select_best'
include { EVALUATE       } from '../modules/local/evaluate'
include { REPORT         } from '../modules/local/report'
include { MULTIQC        } from '../modules/local/multiqc'
include { softwareVersionsYaml } from '../subworkflows/local/utils_egr_pipeline'

workflow EGR {

    take:
    ch_samples // channel: [ val(meta), path(decoy), path(reference) or [] ]; reference = the native
               // (`native` itself is a reserved word in Groovy)
    ch_weights // channel: [ path(W.safetensors), path(W.json) ], or [ [], [] ] for the shipped weights
    refiners   // list   : refiners from --refiners
    batch_size // integer: decoys per EGR_REFINE task
    select     // string : --select, none or best-predicted

    main:
    // Tool versions need no channel here: every module sends its own to the `versions` topic, read once
    // below for the MultiQC software-versions file.
    PREPARE_GRAPHS(ch_samples.map { meta, decoy, reference -> [ meta, decoy ] })

    // Files every later step reads, and the models to compare with natives: the cleaned decoy
    // ('before') and each refiner's output ('after').
    // Only decoys whose graph was built go on to the refiners and to DockQ, as in `egr run`: one that
    // fails at MSMS_SURFACE or FEATURIZE keeps its failure record and nothing else.
    ch_prepared = PREPARE_GRAPHS.out.clean
        .join(PREPARE_GRAPHS.out.graph)
        .map { meta, pdb, graph -> [ meta, pdb ] }
    ch_results = PREPARE_GRAPHS.out.ingest.mix(PREPARE_GRAPHS.out.failed).map { meta, json -> json }
    ch_models  = ch_prepared.map { meta, pdb -> [ meta + [ model: 'decoy' ], pdb ] }

    if ('egr' in refiners) {
        // Batches of graphs per task. Sorting first gives each batch the same members on every
        // run, so -resume finds finished batches in the cache.
        ch_batches = PREPARE_GRAPHS.out.graph
            .map { meta, graph -> graph }
            .toSortedList { a, b -> a.name <=> b.name }
            .flatMap { graphs -> graphs.collate(batch_size).withIndex().collect { batch, i -> [ [ id: "batch_${i + 1}" ], batch ] } }

        EGR_REFINE(ch_batches, ch_weights)

        // Back to one item per decoy: each output lies in a folder named after its decoy id.
        ch_meta_by_id = ch_samples.map { meta, decoy, reference -> [ meta.id, meta ] }
        ch_refined = EGR_REFINE.out.refined
            .transpose()
            .map { batch, pdb -> [ pdb.parent.name, pdb ] }
            .join(ch_meta_by_id)
            .map { id, pdb, meta -> [ meta + [ model: 'egr' ], pdb ] }
        ch_models  = ch_models.mix(ch_refined)
        ch_results = ch_results.mix(
            EGR_REFINE.out.refined.mix(EGR_REFINE.out.plddt, EGR_REFINE.out.scores).transpose().map { batch, file -> file }
        )
    }

    RUN_BASELINES(ch_prepared, refiners)
    ch_models  = ch_models.mix(RUN_BASELINES.out.models)
    ch_results = ch_results.mix(RUN_BASELINES.out.json.map { meta, json -> json })

    // --select best-predicted: one task per decoy, once all its structures and refiner records are in
    // (a refiner with a record and no structure is listed as missing, with its reason).
    if (select == 'best-predicted') {
        ch_candidates = ch_models
            .map { meta, model -> [ meta.id, model ] }
            .mix(RUN_BASELINES.out.json.map { meta, json -> [ meta.id, json ] })
            .groupTuple()
            .join(ch_prepared.map { meta, pdb -> [ meta.id, meta ] })
            .map { id, files, meta -> [ meta, files ] }
        SELECT_BEST(ch_candidates, ch_weights)
        ch_results = ch_results.mix(SELECT_BEST.out.json.map { meta, json -> json })
    }

    // DockQ for every decoy with a native: one task scores all its models, so that they share the
    // decoy's chain mapping (as in `egr run`). A decoy's group goes as soon as the decoy and each
    // refiner's model are in; one with a refiner that gave no model goes when all models are in.
    ch_natives = ch_samples
        .filter { meta, decoy, reference -> reference }
        .map { meta, decoy, reference -> [ meta.id, meta, reference ] }
    DOCKQ_SCORE(
        ch_models
            .map { meta, model -> [ meta.id, model ] }
            .groupTuple(size: 1 + refiners.toSet().size(), remainder: true)
            .join(ch_natives)
            .map { id, models, meta, reference -> [ meta, models, reference ] }
    )
    ch_results = ch_results.mix(DOCKQ_SCORE.out.json.flatMap { meta, jsons -> jsons })

    // Every decoy of the input, whatever step failed. The step commands run with --keep-going, so a decoy
    // a step fails on leaves its own failure record (reason, failed_step) in ch_results; a task that dies
    // without one (killed, errorStrategy 'ignore') leaves nothing, so the run's list of decoys, with the
    // steps whose outputs exist, goes to the summary too (egr.summary.MANIFEST), which gives each decoy
    // without scores a failed row naming its step.
    if ('egr' in refiners) {
        ch_steps_done = PREPARE_GRAPHS.out.clean.map { meta, f -> [ meta.id, 'ingest' ] }
            .mix(
                PREPARE_GRAPHS.out.surface.map { meta, f -> [ meta.id, 'surface' ] },
                PREPARE_GRAPHS.out.graph.map { meta, f -> [ meta.id, 'featurize' ] }
            )
            .groupTuple()
        ch_manifest = ch_samples
            .map { meta, decoy, reference -> [ meta.id, decoy.toString(), reference ? reference.toString() : '' ] }
            .join(ch_steps_done, remainder: true)
            .map { id, decoy, reference, steps -> [ id, decoy, reference, (steps ?: []).sort().join(',') ].join('\t') }
            .toSortedList()
            .map { lines -> ([ 'id\tinput\tnative\tcompleted' ] + lines).join('\n') + '\n' }
            .collectFile(name: 'egr_decoys.tsv')
        ch_results = ch_results.mix(ch_manifest)
    }

    EVALUATE(ch_results.collect())

    REPORT(ch_results.mix(EVALUATE.out.summary, EVALUATE.out.tsv).collect())

    // One YAML of every tool version, in pipeline_info/ and in the MultiQC report: the
    // [ task.process, tool, version ] tuples that the steps of this run sent to the `versions` topic,
    // complete once every one of those steps has finished. MULTIQC reads the file, so it sends its own
    // version to no topic: a process that consumes a topic must not feed it.
    ch_versions_yml = channel.topic('versions')
        .unique()
        .toList()
        .map { entries -> softwareVersionsYaml(entries) }
        .collectFile(name: 'egr-nf_software_mqc_versions.yml', storeDir: "${params.outdir}/pipeline_info")

    MULTIQC(
        REPORT.out.mqc.flatten().mix(ch_versions_yml).collect(),
        file("${projectDir}/assets/multiqc_config.yml", checkIfExists: true),
        params.multiqc_config ? file(params.multiqc_config, checkIfExists: true) : []
    )

    emit:
    summary  = EVALUATE.out.summary // channel: path(summary.tsv)
    report   = REPORT.out.html      // channel: path(report.html)
    multiqc  = MULTIQC.out.report   // channel: path(multiqc_report.html)
    versions = ch_versions_yml      // channel: path(egr-nf_software_mqc_versions.yml)
}
