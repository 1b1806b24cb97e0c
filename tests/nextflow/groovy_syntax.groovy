// Syntax-only check of Nextflow scripts and configs with the Groovy compiler.
//
// Nextflow files are Groovy source (the DSL is AST transforms over ordinary Groovy syntax),
// so running the compiler up to the CONVERSION phase catches unbalanced braces, broken
// GStrings, stray tokens, etc. without resolving Nextflow's runtime names (process, params,
// Channel...), which only exist inside the Nextflow engine.
//
// Usage: groovy groovy_syntax.groovy FILE [FILE...]   (exit status 1 if any file fails)
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.Phases

int failures = 0
for (String name : args) {
    def unit = new CompilationUnit(new CompilerConfiguration())
    unit.addSource(new File(name))
    try {
        unit.compile(Phases.CONVERSION)
        println "OK   ${name}"
    } catch (Exception e) {
        failures++
        println "FAIL ${name}"
        println e.message
    }
}
System.exit(failures ? 1 : 0)
