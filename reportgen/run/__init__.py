"""A run: the typed values the stages hand on (History, Evaluation, Inspection, Comparison,
Verdict, RunRecord), each with the file of the run folder it is saved in, and the run folder
itself (staged, then moved into place). numpy, and scipy through reportgen.stats; no mxnet,
no drawing, no templates."""
