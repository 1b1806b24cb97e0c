/*
========================================================================================
    SPLIT: sequence-disjoint train/validation/test splits (--workflow split)
========================================================================================
    The training-data folder (--training_data, laid out <set>/<target>/{decoys,native}/) goes to one
    MMSEQS_CLUSTER task, which runs `egr split` with MMseqs2; splits.tsv lands in <outdir>/split/.
----------------------------------------------------------------------------------------
*/

include { MMSEQS_CLUSTER } from '../modules/local/mmseqs_cluster'

workflow SPLIT {

    take:
    ch_data // channel: [ val(meta), path(training-data folder) ]

    main:
    MMSEQS_CLUSTER(ch_data)

    ch_versions_yml = MMSEQS_CLUSTER.out.versions
        .collectFile(name: 'egr-nf_software_mqc_versions.yml', storeDir: "${params.outdir}/pipeline_info", newLine: true, sort: true)

    emit:
    splits   = MMSEQS_CLUSTER.out.splits // channel: [ val(meta), path(splits.tsv) ]
    versions = ch_versions_yml           // channel: path(egr-nf_software_mqc_versions.yml)
}
