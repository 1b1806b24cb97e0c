/*
========================================================================================
    SPLIT: sequence-disjoint train/validation/test splits (--workflow split)
========================================================================================
    The training-data folder (--training_data, laid out <set>/<target>/{decoys,native}/) goes to one
    MMSEQS_CLUSTER task, which runs `egr split` with MMseqs2; splits.tsv lands in <outdir>/split/.
----------------------------------------------------------------------------------------
*/

include { MMSEQS_CLUSTER       } from '../modules/local/mmseqs_cluster'
include { softwareVersionsYaml } from '../subworkflows/local/utils_egr_pipeline'

workflow SPLIT {

    take:
    ch_data // channel: [ val(meta), path(training-data folder) ]

    main:
    MMSEQS_CLUSTER(ch_data)

    // The tool versions MMSEQS_CLUSTER sent to the `versions` topic, as in the refine workflow.
    ch_versions_yml = channel.topic('versions')
        .unique()
        .toList()
        .map { entries -> softwareVersionsYaml(entries) }
        .collectFile(name: 'egr-nf_software_mqc_versions.yml', storeDir: "${params.outdir}/pipeline_info")

    emit:
    splits   = MMSEQS_CLUSTER.out.splits // channel: [ val(meta), path(splits.tsv) ]
    versions = ch_versions_yml           // channel: path(egr-nf_software_mqc_versions.yml)
}
