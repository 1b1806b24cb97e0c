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
    path "versions.yml"                , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    egr split --data ${data} --out splits.tsv --threads ${task.cpus} ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        egr: \$(egr --version 2>&1 | sed 's/.* //')
        mmseqs: \$(mmseqs version)
    END_VERSIONS
    """

    stub:
    """
    touch splits.tsv

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        egr: 0.1.0
        mmseqs: 14-7e284
    END_VERSIONS
    """
}
