"""egr-nf: refine and quality-assess protein-complex structures with EGR.

The package is a flow of single-purpose steps that pass plain files between them:
``structure`` (ingest) → ``surface`` → ``graph`` (featurize) → ``model`` → ``refine`` (refine + QA),
chained in-process by ``runner`` (``egr run``) and exposed one-per-command by ``cli``.
"""

__version__ = "0.1.0"
