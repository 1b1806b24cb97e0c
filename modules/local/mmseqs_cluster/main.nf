// Sequence-disjoint data splits for training (--workflow split): `egr split` writes the chains of
// all natives under a training-data folder (<set>/<target>/{decoys,native}/) to FASTA, clusters them
// with MMseqs2 (easy-cluster; 30 % identity over 50 % coverage by default) and assigns whole groups
// of targets to train/validation/test, so no chain in one split resembles a chain in another.
// The container holds egr and MMseqs2. Sets to use: ext.args '--sets bm5,dips'.
process MMSEQS_CLUSTER {
    tag "${meta.id}"
    label 'process_medium'
    container 'egr-nf/mmseqs2:0.1.0'

    input:
    tuple val(meta), path(data) // folder: <set>/<target>/{decoys,native}/

    output:
    // target, set, split, group, clusters: one row per target (egr.split.write_splits)
    tuple val(meta), path("splits.tsv"), emit: splits
    tuple val("${task.process}"), val('egr'), eval('egr --version'), emit: versions_egr, topic: versions
    tuple val("${task.process}"), val('mmseqs'), eval('mmseqs version'), emit: versions_mmseqs, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    egr split --data ${data} --out splits.tsv --threads ${task.cpus} ${args}
    """

    stub:
    """
    touch splits.tsv
    """
}
