#!/usr/bin/env nextflow
/*
========================================================================================
    egr-nf: refine protein-complex decoys with EGR
========================================================================================
    nextflow run main.nf -profile test,docker --outdir results
    nextflow run main.nf -profile singularity --decoys 'decoys/*.pdb.gz' --natives natives/ --outdir results
    Docs: docs/nextflow.md. The same steps run without Nextflow as `egr run`.
----------------------------------------------------------------------------------------
*/

include { PIPELINE_INITIALISATION } from './subworkflows/local/utils_egr_pipeline'
include { EGR                     } from './workflows/egr.nf'
include { SPLIT                   } from './workflows/split.nf'

workflow {

    main:
    if (params.workflow == 'split') {
        // Training-data splits take a folder of decoy/native sets, not decoys to refine.
        SPLIT(channel.fromPath(params.training_data, type: 'dir', checkIfExists: true).map { data -> [ [ id: 'split' ], data ] })
    } else {
        PIPELINE_INITIALISATION(
            params.version,
            params.validate_params,
            params.input,
            params.decoys,
            params.natives
        )
        // --weights names the .safetensors file; its JSON model card sits beside it.
        ch_weights = params.weights
            ? channel.value([ file(params.weights, checkIfExists: true), file(params.weights.replaceFirst(/\.safetensors$/, '.json'), checkIfExists: true) ])
            : channel.value([ [], [] ])
        EGR(
            PIPELINE_INITIALISATION.out.samples,
            ch_weights,
            params.refiners.tokenize(','),
            params.batch_size,
            params.select
        )
    }

    // A handler section of the entry workflow (Nextflow >= 25.10): the strict parser allows no
    // top-level `workflow.onComplete { }` statement beside the declarations.
    onComplete:
    log.info(workflow.success
        ? "egr-nf: done. Results in ${params.outdir}; report: ${params.outdir}/report.html"
        : "egr-nf: stopped with an error. Task logs: ${params.outdir}/pipeline_info/execution_trace_${params.trace_report_suffix}.txt and the work directories it names.")
}
